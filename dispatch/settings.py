"""Configuration of the ticket core (`[dispatch]` in config.toml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.settings import Section
from dispatch.attachments.settings import AttachmentSettings


class DuplicateSettings(Section):
    """Duplicate requests at intake (dispatch.duplicates): what the console suggests linking."""

    # Open tickets registered within so many days are compared with a new call.
    days: int = Field(default=7, ge=1, le=90)
    # Sentence-model cosine (place words out) from which a ticket is suggested.
    min_similarity: float = Field(default=0.90, ge=0.0, le=1.0)
    # Character-bigram cosine from which a ticket is suggested when the model is off.
    min_lexical: float = Field(default=0.3, ge=0.0, le=1.0)
    # At most so many suggestions.
    shown: int = Field(default=3, ge=1, le=10)
    # Of each kind of candidate (same community, same town, same number) the newest so many are compared.
    max_candidates: int = Field(default=3000, ge=10, le=100_000)


class DispatchSection(Section):
    category_tree: Path = Path("dispatch/category_tree.toml")
    # The county's towns and communities and the words that place a ticket in them (地名库); by
    # default the demo county's, shipped with the package.
    gazetteer: Path = Path(__file__).with_name("gazetteer.toml")
    # The county's outline, one polygon per community of the gazetteer (GeoJSON), for the maps.
    county_map: Path = Path(__file__).with_name("county_map.geojson")
    # Digits of the daily serial in a ticket number (20261121-0001); more digits appear by themselves
    # when a day passes 9999 tickets.
    ticket_number_digits: int = Field(default=4, ge=3, le=8)
    # A department's reply waits for the hotline's review (审核) before it reaches the citizen (the
    # look-up, the callback survey) or the public pages. False: replies go out as they come (the
    # shipped config.toml turns the review on).
    review_replies: bool = False
    attachments: AttachmentSettings = AttachmentSettings()
    duplicates: DuplicateSettings = DuplicateSettings()
