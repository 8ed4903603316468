"""Duplicate requests at intake (并单 at the source, 国办函〔2025〕66号).

While the operator types, the open tickets of the last days that are in the same place and say the
same thing are shown ("可能与 20261207-0012 为同一诉求，已有 3 位来电人"); one key links the call to
that ticket as a further caller (附加来电, `Action.ADD_CALLER`) instead of a new dispatch.

Which tickets are compared: open ones registered within `days`, placed by the gazetteer where the
new text is (the same community; or, where either side names only the town, the same town), and
those the same number called about before, wherever they are; of each, the newest `max_candidates`
(a bound for a flood of calls: a county's community never has thousands of open tickets in a week).

How they are compared: place words are taken out of both texts first (every ticket of one community
names it; that says nothing about the matter), then

- with the sentence model (core.semantics): the cosine of the two embeddings, suggested from
  `min_similarity`; a candidate's vector is made once and kept (in this process, and by text in the
  model's disk cache), and each new ticket's at registration (`DuplicateIndex.registered`);
- without it: the cosine of their character-bigram sets (fillers out), suggested from `min_lexical`.

The thresholds were set on dispatch/tuning/duplicates.jsonl (written by the team) and are judged on
tests/dispatch/data/duplicates_heldout.jsonl (written by other hands, never tuned on).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

import numpy as np
from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from core import semantics
from core.clock import Clock
from dispatch.gazetteer import Gazetteer, Place
from dispatch.models import Ticket, TicketCaller
from dispatch.service import REPEAT_CALLS, callers_of, calls_about
from dispatch.settings import DuplicateSettings
from dispatch.states import OPEN_STATES, STATE_LABELS, TicketState

_NOT_HAN = re.compile(r"[^\u4e00-\u9fff]+")
# Characters that pair with anything and say nothing of the matter (我们, 这个, 了吗 …).
_FILLERS = frozenset("的了吗呢啊呀吧我们你他她它在是有和就都也还这那个一不人要到说很太好么请问")
_OPEN = [s.value for s in OPEN_STATES]


class Duplicate(BaseModel):
    """A ticket that is probably the same matter as what the caller says."""

    model_config = ConfigDict(frozen=True)
    number: str
    content: str
    state: str
    state_label: str
    created_at: datetime
    place: str | None
    callers: int  # everyone who called about it so far
    score: float
    calls_by_this_number: int  # this call included: REPEAT_CALLS or more is flagged
    repeat: bool


@dataclass(frozen=True)
class _Candidate:
    id: int
    number: str
    content: str


def bigrams(text: str) -> frozenset[str]:
    pairs: set[str] = set()
    for run in _NOT_HAN.split(text):
        pairs.update(a + b for a, b in pairwise(run) if not (a in _FILLERS and b in _FILLERS))
    return frozenset(pairs)


def lexical_similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / float(np.sqrt(len(a) * len(b)))


class VectorCache:
    """Embeddings of tickets' texts (place words out) by ticket id and text (an id alone could name
    another ticket in another database of the same process), the newest kept."""

    # float16 halves the memory (100 000 tickets: 77 MB) and changes a cosine by less than 0.001.
    def __init__(self, size: int = 150_000) -> None:
        self._vectors: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def vectors(
        self, encoder: semantics.Encoder, items: Sequence[tuple[int, str]], matter: Callable[[str], str]
    ) -> np.ndarray:
        """One row per (ticket id, text): the embedding of `matter(text)`, made (in one batch) only for
        those not seen before."""
        out = np.zeros((len(items), encoder.dim), dtype=np.float32)
        missing: list[int] = []
        with self._lock:
            for row, (ticket_id, text) in enumerate(items):
                hit = self._vectors.get((encoder.version, ticket_id, text))
                if hit is None:
                    missing.append(row)
                else:
                    out[row] = hit
        if missing:
            fresh = encoder.queries([matter(items[row][1]) for row in missing])
            with self._lock:
                for row, vector in zip(missing, fresh, strict=True):
                    out[row] = vector
                    self._vectors[(encoder.version, *items[row])] = vector.astype(np.float16)
                while len(self._vectors) > self._size:
                    self._vectors.popitem(last=False)
        return out


VECTORS = VectorCache()


class DuplicateFinder:
    def __init__(
        self,
        session: Session,
        places: Gazetteer | None,
        settings: DuplicateSettings,
        clock: Clock,
        encoder: semantics.Encoder | None = None,
        vectors: VectorCache = VECTORS,
    ) -> None:
        self.session = session
        self.places = places
        self.settings = settings
        self.clock = clock
        self.encoder = encoder
        self.vectors = vectors

    def find(
        self, text: str, address: str | None = None, phone: str | None = None, exclude: str | None = None
    ) -> list[Duplicate]:
        """The open tickets that are probably the same matter as `text`, the likeliest first."""
        place = self.places.locate(address, text) if self.places else None
        candidates = self._candidates(place, phone, exclude)
        if not candidates:
            return []
        scores = self._scores(text, candidates)
        ranked = sorted(
            ((score, c) for score, c in zip(scores, candidates, strict=True) if score is not None),
            key=lambda pair: -pair[0],
        )[: self.settings.shown]
        return self._described([c.number for _, c in ranked], [s for s, _ in ranked], phone)

    # ---- which tickets ----------------------------------------------------------------------

    def _candidates(self, place: Place | None, phone: str | None, exclude: str | None) -> list[_Candidate]:
        if place is None and not phone:
            return []  # no place and no number: nothing says two calls are about one spot
        since = self.clock.now() - timedelta(days=self.settings.days)
        # One query per way of being a candidate, each on its own index (an OR of them scans).
        ways = [*self._same_area(place)] if place is not None else []
        if phone:
            further = select(TicketCaller.ticket_id).where(TicketCaller.phone == phone)
            ways.extend([Ticket.caller_phone == phone, Ticket.id.in_(further)])
        found: dict[int, _Candidate] = {}
        for way in ways:
            rows = self.session.execute(
                select(Ticket.id, Ticket.number, Ticket.content)
                .where(
                    way, Ticket.created_at >= since, Ticket.state.in_(_OPEN), Ticket.number != (exclude or "")
                )
                .order_by(Ticket.created_at.desc())
                .limit(self.settings.max_candidates)
            )
            found.update((row[0], _Candidate(*row)) for row in rows)
        return list(found.values())

    @staticmethod
    def _same_area(place: Place) -> list[ColumnElement[bool]]:
        """The same community; where either side names only the town, the same town."""
        if place.community_code is None:
            return [Ticket.town_code == place.town_code]
        return [
            Ticket.community_code == place.community_code,
            and_(Ticket.town_code == place.town_code, Ticket.community_code.is_(None)),
        ]

    # ---- how alike ----------------------------------------------------------------------------

    def _matter(self, text: str) -> str:
        return self.places.without_places(text) if self.places else text

    def _scores(self, text: str, candidates: list[_Candidate]) -> list[float | None]:
        """Each candidate's similarity, or None when it is not similar enough to show."""
        matter = self._matter(text)
        if self.encoder is None:
            mine = bigrams(matter)
            lexical = [lexical_similarity(mine, bigrams(self._matter(c.content))) for c in candidates]
            return [s if s >= self.settings.min_lexical else None for s in lexical]
        query = self.encoder.query(matter)
        items = [(c.id, c.content) for c in candidates]
        dense = self.vectors.vectors(self.encoder, items, self._matter) @ query
        shown = self.settings.min_similarity
        return [float(d) if d >= shown else None for d in dense]

    # ---- what the console shows -------------------------------------------------------------

    def _described(self, numbers: list[str], scores: list[float], phone: str | None) -> list[Duplicate]:
        tickets = {
            t.number: t for t in self.session.scalars(select(Ticket).where(Ticket.number.in_(numbers)))
        }
        out = []
        for number, score in zip(numbers, scores, strict=True):
            t = tickets[number]
            calls = calls_about(t, phone) + 1 if phone else 0
            out.append(
                Duplicate(
                    number=t.number,
                    content=t.content,
                    state=t.state,
                    state_label=STATE_LABELS[TicketState(t.state)],
                    created_at=t.created_at,
                    place=self.places.label(t.town_code, t.community_code) if self.places else None,
                    callers=callers_of(t),
                    score=round(score, 3),
                    calls_by_this_number=calls,
                    repeat=calls >= REPEAT_CALLS,
                )
            )
        return out


class DuplicateIndex:
    """A registration watcher: each new ticket's vector is made while it is registered, so the first
    call that repeats it is compared at once."""

    def __init__(self, places: Callable[[], Gazetteer | None], vectors: VectorCache = VECTORS) -> None:
        self.places = places  # read at each registration: the gazetteer may be edited meanwhile
        self.vectors = vectors

    def registered(self, session: Session, ticket: Ticket) -> None:
        encoder = semantics.encoder()
        if encoder is None or TicketState(ticket.state) not in OPEN_STATES:
            return
        places = self.places()
        self.vectors.vectors(encoder, [(ticket.id, ticket.content)], places.without_places if places else str)
