"""Configuration of the ticket core (`[dispatch]` in config.toml)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from core.settings import Section
from dispatch.attachments.settings import AttachmentSettings


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
