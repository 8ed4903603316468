"""Background transcription: every finished call with a recording gets a transcript of the citizen's
channel, its knowledge-base suggestions and its routing, stored in `call_transcripts`.

The table is the queue. Each pass (after every hang-up, else every few seconds) the service

1. adds a `pending` row for each call record that has a recording and no row yet;
2. claims rows (`pending`, or `running` with a dead claim: its process is gone or its lease ran out)
   with a guarded UPDATE, so two app processes never take the same call;
3. hands them to a bounded pool of worker processes, each of which loaded the model once at start;
4. corrects the text towards the hotline vocabulary, runs the knowledge base and the router on it,
   stores everything and publishes `transcript.done` on `ctx.events`.

Nothing lives only in memory: after a crash or a restart the rows are still there and are picked up
again. With no usable model the service is "off": rows wait as `pending`, `status()` says why, and
the model is looked for again every minute, so the backlog is transcribed once it is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callcenter.asr import whisper, workers
from callcenter.asr.models import CallTranscript, TranscriptStatus
from callcenter.asr.transcriber import ModelError, Transcript, check_model_folder
from callcenter.asr.vocabulary import Vocabulary
from callcenter.context import CallCentreContext
from callcenter.models import CallRecord, Seat
from callcenter.recording import HOTLINE_CHANNEL
from callcenter.settings import AsrSettings

log = logging.getLogger("callcenter.asr")

POLL_SECONDS = 5.0
MODEL_RETRY_SECONDS = 60.0
LEASE_SECONDS = 15 * 60  # longer than a usual call's transcription; a claim older than this is dead
LEASE_PER_AUDIO_SECOND = 2.0  # ... or than twice the call's length (a slow CPU, a long call)
MAX_ATTEMPTS = 3
RECENT_CALLS = timedelta(days=1)  # later passes only look at calls offered this recently (index)
EMPTY_WAV_BYTES = 44


@dataclass(frozen=True)
class Claim:
    row_id: int
    call_uid: str
    path: str
    attempts: int


def _owner_token() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_is_dead(claimed_by: str | None, me: str) -> bool:
    """A running row whose claimer is known to be gone: same host, and its process died, or it was an
    earlier service in this very process (a restart in place)."""
    if not claimed_by or claimed_by == me:
        return False
    host, _, rest = claimed_by.partition(":")
    pid_text, _, _token = rest.partition(":")
    my_host, _, my_rest = me.partition(":")
    if host != my_host or not pid_text.isdigit():
        return False
    return int(pid_text) == int(my_rest.partition(":")[0]) or not _pid_alive(int(pid_text))


class TranscriptionService:
    def __init__(
        self,
        ctx: CallCentreContext,
        settings: AsrSettings | None = None,
        *,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.ctx = ctx
        self.settings = settings or ctx.settings.callcenter.asr
        self.engine = self.settings.engine
        self.model_path: Path | None = engine_folder(ctx.settings.resolve, self.settings)
        self.processes = self.settings.transcription_processes
        self.poll_seconds, self.lease_seconds, self.max_attempts = poll_seconds, lease_seconds, max_attempts
        self.me = _owner_token()
        self._state: dict[str, Any] = {"transcription": "off", "reason": "not started"}
        self._pool: ProcessPoolExecutor | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._model_checked_at = -MODEL_RETRY_SECONDS
        self._model_signature: tuple[float, ...] | None = None
        self._full_scan_done = False
        self._vocabulary: tuple[int, Vocabulary] | None = None
        self.pending = 0
        self.oldest_pending: datetime | None = None
        self.stored = 0

    # --- life cycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        """Look for the model (a missing or broken one only turns transcription off) and run the queue."""
        await self._ensure_model()
        # Build the matcher, the vocabulary and the router now, not on the first hang-up.
        self._warm_task = asyncio.create_task(asyncio.to_thread(self._warm), name="asr-warm-up")
        self._task = asyncio.create_task(self._loop(), name="asr-transcription")
        self._subscriber = asyncio.create_task(self._wake_on_hangup(), name="asr-hangups")

    async def stop(self) -> None:
        for task in (self._task, getattr(self, "_subscriber", None), getattr(self, "_warm_task", None)):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._inflight:
            # Jobs under way end as they are; their rows stay "running" and the next start retries them.
            for task in self._inflight:
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
        self._shutdown_pool()

    def wake(self) -> None:
        """Look for new recordings now (the controller may call this after a hang-up)."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            **self._state,
            "engine": self.engine,
            "model_path": str(self.model_path) if self.model_path else None,
            "processes": self.processes if self._state["transcription"] == "on" else 0,
            "pending": self.pending,
            **self._backlog(),
            "running": len(self._inflight),
        }

    def _backlog(self) -> dict[str, Any]:
        """How old the oldest waiting call is, and whether that is worth a warning on the dashboard."""
        if not self.pending or self.oldest_pending is None:
            return {"backlog_age_seconds": 0, "backlog_warning": False}
        age = max(0.0, (self.ctx.clock.now() - self.oldest_pending).total_seconds())
        return {
            "backlog_age_seconds": round(age),
            "backlog_warning": age > self.settings.backlog_warning_minutes * 60,
        }

    @property
    def on(self) -> bool:
        return self._state["transcription"] == "on"

    async def run_once(self) -> int:
        """One pass, waiting for its jobs: what a test or the benchmark calls. Returns rows finished."""
        before = self.stored
        await self._ensure_model()
        await self._fill()
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)
            await self._fill()
        return self.stored - before

    async def _loop(self) -> None:
        while True:
            try:
                await self._ensure_model()
                await self._fill()
            except Exception:  # a database hiccup must not end the service; the next pass retries
                log.exception("transcription pass failed")
            # Not asyncio.wait_for: on Python 3.11 it can swallow a stop() that arrives just as the
            # event fires, and stop() would then wait for this loop for ever (seen in the benchmark).
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.poll_seconds)
            finally:
                waiter.cancel()
            self._wake.clear()

    async def _wake_on_hangup(self) -> None:
        async with self.ctx.events.subscribe(["call.ended"]) as events:
            while True:
                await events.get()
                self._wake.set()

    # --- the model ---------------------------------------------------------------------------------

    def _off(self, reason: str, message: str | None = None) -> None:
        if self._state.get("reason") != reason:
            log.error("speech to text is OFF: %s", message or reason)
        self._state = {"transcription": "off", "reason": reason}
        self._shutdown_pool()

    async def _ensure_model(self) -> None:
        if self.on and self._pool is not None:
            return
        now = time.monotonic()
        if now - self._model_checked_at < MODEL_RETRY_SECONDS:
            return
        self._model_checked_at = now
        if self.model_path is None:
            self._off("no model configured ([callcenter.asr] model_path)")
            return
        try:
            await asyncio.to_thread(check_engine_folder, self.engine, self.settings, self.model_path)
        except ModelError as exc:
            self._off(str(exc))
            return
        signature = _folder_signature(self.model_path)
        if self._state.get("broken") and signature == self._model_signature:
            return  # the same broken files as last time: do not spawn a process to fail again
        self._model_signature = signature
        await self._start_pool()

    def _engine_spec(self) -> workers.EngineSpec:
        s = self.settings
        return {
            "engine": self.engine,
            "path": str(self.model_path),
            "beam_size": s.whisper_beam_size,
            "threads": s.whisper_threads,
            "packaged": self.engine == "whisper" and s.whisper_model is None,
        }

    async def _start_pool(self) -> None:
        assert self.model_path is not None
        self._pool = workers.make_pool(self._engine_spec(), self.processes)
        try:
            answer = await asyncio.wrap_future(self._pool.submit(workers.probe))
        except BrokenProcessPool as exc:
            answer = {"ok": False, "model_error": {"message": f"worker died loading the model: {exc}"}}
        if not answer["ok"]:
            error = answer["model_error"] or {}
            self._off(error.get("message", "model could not be loaded"), error.get("message"))
            self._state["broken"] = True
            return
        self._state = {"transcription": "on", "reason": None, "model_rate": answer["model_rate"]}
        log.info(
            "speech to text on: %s model %s (%d Hz), %d process(es)",
            self.engine,
            self.model_path,
            answer["model_rate"],
            self.processes,
        )

    def _shutdown_pool(self) -> None:
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        # The workers are ended, not waited for: a worker still starting (loading its model) when the
        # pool shuts down can miss its stop signal, and the interpreter would then wait for it at exit
        # for ever. A job it held is still "running" in the backlog and is retried on the next start.
        workers = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            with contextlib.suppress(ProcessLookupError, ValueError):
                process.terminate()

    # --- the queue ---------------------------------------------------------------------------------

    async def _fill(self) -> None:
        claims = await asyncio.to_thread(self._enqueue_and_claim)
        for claim in claims:
            task = asyncio.create_task(self._job(claim))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    def _enqueue_and_claim(self) -> list[Claim]:
        with self.ctx.unit_of_work() as session:
            self._enqueue(session)
        with self.ctx.unit_of_work() as session:
            waiting = session.execute(
                select(func.count(), func.min(CallTranscript.queued_at)).where(
                    CallTranscript.status == TranscriptStatus.PENDING.value
                )
            ).one()
            self.pending, self.oldest_pending = waiting[0] or 0, waiting[1]
            free = self.processes - len(self._inflight) if self.on else 0
            return self._claim(session, free) if free > 0 else []

    def _enqueue(self, session: Session) -> None:
        """A pending row for every finished call with a recording and no transcript row yet."""
        now = self.ctx.clock.now()
        query = (
            select(CallRecord.id, CallRecord.recording_bytes)
            .outerjoin(CallTranscript, CallTranscript.call_record_id == CallRecord.id)
            .where(CallRecord.recording_path.is_not(None), CallRecord.ended_at.is_not(None))
            .where(CallTranscript.id.is_(None))
        )
        if self._full_scan_done:  # the first pass after start looks at every call, later ones at recent ones
            query = query.where(CallRecord.offered_at >= now - RECENT_CALLS)
        rows = [
            {
                "call_record_id": record_id,
                "status": _initial_status(size).value,
                "queued_at": now,
                "attempts": 0,
            }
            for record_id, size in session.execute(query)
        ]
        if rows:
            try:
                with session.begin_nested():
                    session.execute(insert(CallTranscript), rows)
            except IntegrityError:  # another app process queued them first
                log.debug("transcripts already queued by another process")
        self._full_scan_done = True

    def _claim(self, session: Session, limit: int) -> list[Claim]:
        now = self.ctx.clock.now()
        candidates = session.execute(
            select(CallTranscript, CallRecord.uid, CallRecord.recording_path, CallRecord.recording_seconds)
            .join(CallRecord, CallRecord.id == CallTranscript.call_record_id)
            .where(
                or_(
                    CallTranscript.status == TranscriptStatus.PENDING.value,
                    CallTranscript.status == TranscriptStatus.RUNNING.value,
                )
            )
            .order_by(CallTranscript.queued_at, CallTranscript.id)
        ).all()
        claims: list[Claim] = []
        for row, uid, path, seconds in candidates:
            if len(claims) >= limit:
                break
            # a long call takes long: its lease grows with the audio (an hour-long call is not "dead")
            lease = max(self.lease_seconds, LEASE_PER_AUDIO_SECOND * (seconds or 0))
            if row.status == TranscriptStatus.RUNNING.value and not (
                (row.started_at is not None and row.started_at < now - timedelta(seconds=lease))
                or claim_is_dead(row.claimed_by, self.me)
            ):
                continue
            if row.attempts >= self.max_attempts:
                self._give_up(session, row.id, row.error or "too many attempts (the worker kept dying)")
                continue
            if self._take(session, row, now):
                claims.append(Claim(row.id, uid, path, row.attempts + 1))
        return claims

    def _take(self, session: Session, row: CallTranscript, now: datetime) -> bool:
        """The guarded UPDATE: only succeeds if nobody changed the row since we read it."""
        guard = and_(
            CallTranscript.id == row.id,
            CallTranscript.status == row.status,
            CallTranscript.attempts == row.attempts,
        )
        result = session.execute(
            update(CallTranscript)
            .where(guard)
            .values(
                status=TranscriptStatus.RUNNING.value,
                started_at=now,
                claimed_by=self.me,
                attempts=row.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    def _give_up(self, session: Session, row_id: int, error: str) -> None:
        session.execute(
            update(CallTranscript)
            .where(CallTranscript.id == row_id)
            .values(
                status=TranscriptStatus.FAILED.value, error=error[:2000], finished_at=self.ctx.clock.now()
            )
            .execution_options(synchronize_session=False)
        )

    async def _job(self, claim: Claim) -> None:
        pool = self._pool
        if pool is None:
            await asyncio.to_thread(self._release, claim, None)
            return
        try:
            result = await asyncio.wrap_future(pool.submit(workers.transcribe, claim.path, None))
            if self.settings.operator_channel and "transcript" in result:
                operator = await asyncio.wrap_future(
                    pool.submit(workers.transcribe, claim.path, HOTLINE_CHANNEL)
                )
                # a mono recording has no operator side: its citizen transcript still counts
                result["operator"] = operator.get("transcript")
        except BrokenProcessPool as exc:  # a worker died (Kaldi aborted): retry, counted as an attempt
            log.error("transcription worker died on call %s: %s", claim.call_uid, exc)
            self._shutdown_pool()
            self._state = {"transcription": "off", "reason": "a transcription worker died; restarting"}
            self._model_checked_at = -MODEL_RETRY_SECONDS
            await asyncio.to_thread(self._release, claim, f"worker died: {exc}")
            self.wake()
            return
        if "model_error" in result:
            await asyncio.to_thread(self._release, claim, None, undo_attempt=True)
            self._off(result["model_error"]["message"])
        elif "error" in result:
            await asyncio.to_thread(self._failed, claim, result["error"], result.get("permanent", False))
        else:
            transcript = Transcript.from_dict(result["transcript"])
            operator = Transcript.from_dict(result["operator"]) if result.get("operator") else None
            payload = await asyncio.to_thread(self._store, claim, transcript, operator)
            self.stored += 1
            self.ctx.events.publish("transcript.done", payload)
        self.wake()

    def _release(self, claim: Claim, error: str | None, undo_attempt: bool = False) -> None:
        """Back to pending (to be retried), unless the attempts are used up."""
        with self.ctx.unit_of_work() as session:
            if error is not None and claim.attempts >= self.max_attempts:
                self._give_up(session, claim.row_id, error)
                return
            values: dict[str, Any] = {"status": TranscriptStatus.PENDING.value, "claimed_by": None}
            if error is not None:
                values["error"] = error[:2000]
            if undo_attempt:
                values["attempts"] = claim.attempts - 1
            session.execute(
                update(CallTranscript)
                .where(CallTranscript.id == claim.row_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def _failed(self, claim: Claim, error: str, permanent: bool) -> None:
        log.warning("transcription of call %s failed: %s", claim.call_uid, error)
        if permanent:
            with self.ctx.unit_of_work() as session:
                self._give_up(session, claim.row_id, error)
        else:
            self._release(claim, error)

    # --- storing -----------------------------------------------------------------------------------

    def _store(
        self, claim: Claim, transcript: Transcript, operator: Transcript | None = None
    ) -> dict[str, Any]:
        with self.ctx.unit_of_work() as session:
            row = session.get(CallTranscript, claim.row_id)
            record = session.get(CallRecord, row.call_record_id) if row else None
            if row is None or record is None:
                return {"call_uid": claim.call_uid, "status": "gone"}
            kb = self.knowledge_base(session)
            text = self._corrected(kb, transcript.text)
            row.status = TranscriptStatus.DONE.value
            row.raw_text, row.text = transcript.text, text
            if operator is not None and operator.channel == HOTLINE_CHANNEL:
                row.operator_text = self._corrected(kb, operator.text)
            row.words = [vars(w) for w in transcript.words]
            row.channel, row.model_path = transcript.channel, transcript.model_path
            row.audio_seconds, row.decode_seconds = transcript.audio_seconds, transcript.decode_seconds
            row.finished_at, row.error = self.ctx.clock.now(), None
            row.suggestions = suggestions(kb, text)
            row.classification = self._classify(session, text)
            session.flush()
            extension = (
                session.scalar(select(Seat.extension).where(Seat.id == record.seat_id))
                if record.seat_id
                else None
            )
            return {
                "call_uid": record.uid,
                "ticket_id": record.ticket_id,
                "extension": extension,
                "text": text,
                "suggestions": row.suggestions,
                "classification": row.classification,
            }

    def _warm(self) -> None:
        with self.ctx.unit_of_work() as session:
            kb = self.knowledge_base(session)
            self._classify(session, "你好")
        if self.settings.vocabulary_correction:
            self._vocabulary_for(kb)

    def knowledge_base(self, session: Session) -> Any:
        # The same cached matcher the knowledge-base pages use (rebuilt only when entries change).
        return self.ctx.understanding.knowledge_base(session)

    def _corrected(self, kb: Any, text: str) -> str:
        """Text corrected towards the hotline's words (as it is when the correction is off)."""
        if not (self.settings.vocabulary_correction and text):
            return text
        return self._vocabulary_for(kb).correct(text)

    def _vocabulary_for(self, kb: Any) -> Vocabulary:
        if self._vocabulary is None or self._vocabulary[0] != id(kb):
            self._vocabulary = (id(kb), Vocabulary.from_hotline(kb.entries))
        return self._vocabulary[1]

    def understand(self, text: str) -> dict[str, Any]:
        """Text corrected towards the hotline's words, its suggestions and its routing."""
        with self.ctx.unit_of_work() as session:
            kb = self.knowledge_base(session)
            text = self._corrected(kb, text)
            return {
                "text": text,
                "suggestions": suggestions(kb, text),
                "classification": self._classify(session, text),
            }

    def _classify(self, session: Session, text: str) -> dict[str, Any] | None:
        return self.ctx.understanding.classify(session, text) if text else None


def suggestions(kb: Any, text: str, k: int = 3) -> list[dict[str, Any]]:
    """The knowledge base's best entries for a text, as stored for the console."""
    if not text:
        return []
    return [
        {
            "entry_id": hit.entry_id,
            "question": kb.by_id[hit.entry_id].question,
            "score": hit.score,
            "confident": hit.confident,
        }
        for hit in kb.match(text, k=k)
    ]


def check_engine_folder(engine: str, settings: AsrSettings, folder: Path) -> None:
    """Refuse a missing or changed model of `engine` in `folder` (ModelError says why)."""
    if engine == "vosk":
        check_model_folder(folder)
    elif settings.whisper_model is None:
        whisper.packaged_model(folder)  # joins the packaged parts once, checks the SHA-256
    else:
        whisper.check_whisper_folder(folder)


def engine_folder(resolve: Callable[[Path], Path], settings: AsrSettings) -> Path | None:
    """The model folder of the after-call engine (None: Vosk without a model configured)."""
    if settings.engine == "whisper":
        return resolve(settings.whisper_model or settings.whisper_folder)
    return resolve(settings.model_path) if settings.model_path is not None else None


def _initial_status(recording_bytes: int | None) -> TranscriptStatus:
    empty = recording_bytes is not None and recording_bytes <= EMPTY_WAV_BYTES
    return TranscriptStatus.SKIPPED if empty else TranscriptStatus.PENDING


def _folder_signature(path: Path) -> tuple[float, ...]:
    return tuple(sorted(p.stat().st_mtime for p in path.rglob("*") if p.is_file()))


# --- reading, for the ticket page and the console ----------------------------------------------------


def _view(row: CallTranscript, record: CallRecord) -> dict[str, Any]:
    return {
        "call_uid": record.uid,
        "call_record_id": record.id,
        "ticket_id": record.ticket_id,
        "status": row.status,
        "text": row.text,
        "raw_text": row.raw_text,
        "operator_text": row.operator_text,
        "words": row.words or [],
        "channel": row.channel,
        "audio_seconds": row.audio_seconds,
        "model_path": row.model_path,
        "queued_at": row.queued_at.isoformat() if row.queued_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "attempts": row.attempts,
        "error": row.error,
        "suggestions": row.suggestions or [],
        "classification": row.classification,
    }


def transcript_for_call(session: Session, call_uid: str) -> dict[str, Any] | None:
    """The transcript of one call (any status), or None when the call has none (yet)."""
    found = session.execute(
        select(CallTranscript, CallRecord)
        .join(CallRecord, CallRecord.id == CallTranscript.call_record_id)
        .where(CallRecord.uid == call_uid)
    ).first()
    return _view(*found) if found else None


def transcript_for_ticket(session: Session, ticket_id: int) -> list[dict[str, Any]]:
    """The transcripts of the calls linked to a ticket (`call_records.ticket_id`), oldest call first:
    usually one; a callback or a second call about the same ticket adds more."""
    rows = session.execute(
        select(CallTranscript, CallRecord)
        .join(CallRecord, CallRecord.id == CallTranscript.call_record_id)
        .where(CallRecord.ticket_id == ticket_id)
        .order_by(CallRecord.offered_at, CallRecord.id)
    ).all()
    return [_view(t, r) for t, r in rows]
