"""Background transcription over the database queue: transcripts stored with the call and the ticket,
KB and router suggestions, the backlog across restarts, and the degraded mode without a model."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callcenter.asr.models import CallTranscript, TranscriptStatus
from callcenter.asr.service import (
    TranscriptionService,
    suggestions,
    transcript_for_call,
    transcript_for_ticket,
)
from callcenter.models import CallOutcome, CallRecord
from callcenter.recording import describe
from callcenter.settings import AsrSettings
from dispatch.models import Ticket
from dispatch.routing import Router
from hotline.context import HotlineContext
from knowledge_base import service as kb_service
from tests.callcenter.asr.conftest import silence, write_wav
from tests.conftest import Staff
from tests.helpers import register


def add_call(
    ctx: HotlineContext, folder: Path, uid: str, citizen, ticket_id: int | None = None, operator=None
) -> None:
    """A finished call whose stereo recording has `citizen` on the citizen's channel (and `operator`,
    else silence, on the hotline's)."""
    hotline = operator if operator is not None else silence(8000, len(citizen) / 8000)
    path = write_wav(folder / f"{uid}.wav", 8000, citizen, hotline)
    info = describe(path)
    now = ctx.clock.now()
    with ctx.unit_of_work() as session:
        session.add(
            CallRecord(
                uid=uid,
                caller="13900001111",
                callee="12345",
                offered_at=now - timedelta(minutes=3),
                answered_at=now - timedelta(minutes=2),
                ended_at=now,
                outcome=CallOutcome.ANSWERED.value,
                recording_path=info["path"],
                recording_bytes=info["bytes"],
                recording_sha256=info["sha256"],
                recording_seconds=info["seconds"],
                ticket_id=ticket_id,
            )
        )


def rows(ctx: HotlineContext) -> dict[str, CallTranscript]:
    with ctx.unit_of_work() as session:
        found = session.execute(select(CallRecord.uid, CallTranscript).join(CallTranscript)).all()
        return {uid: row for uid, row in found}


def service(ctx: HotlineContext, model: Path | None, **kwargs: object) -> TranscriptionService:
    return TranscriptionService(ctx, AsrSettings(model_path=model), **kwargs)


async def run_once(svc: TranscriptionService) -> int:
    try:
        return await svc.run_once()
    finally:
        await svc.stop()


def load_demo_kb(ctx: HotlineContext) -> None:
    from hotline.demo_data import DEMO_KB

    with ctx.unit_of_work() as session:
        kb_service.import_jsonl(session, DEMO_KB.read_text(encoding="utf-8"), ctx.clock.now(), "test")


def test_calls_are_transcribed_and_stored_with_call_and_ticket(
    ctx: HotlineContext, staff: Staff, tiny_model: Path, speech: dict, tmp_path: Path
) -> None:
    load_demo_kb(ctx)
    number = register(ctx, staff)
    with ctx.unit_of_work() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
    add_call(ctx, tmp_path, "call-talk", speech[8000], ticket_id)
    add_call(ctx, tmp_path, "call-quiet", silence(8000, 2))
    published = []
    original = ctx.events.publish
    ctx.events.publish = lambda topic, payload: published.append((topic, payload)) or original(topic, payload)

    assert asyncio.run(run_once(service(ctx, tiny_model))) == 2

    stored = rows(ctx)
    talk, quiet = stored["call-talk"], stored["call-quiet"]
    assert talk.status == quiet.status == TranscriptStatus.DONE.value
    assert talk.raw_text and talk.text and " " not in talk.text
    assert talk.channel == 0 and talk.model_path == str(tiny_model) and talk.attempts == 1
    assert talk.words and all(w["start"] <= w["end"] for w in talk.words)
    assert (quiet.text, quiet.suggestions, quiet.classification) == ("", [], None)
    # The knowledge base's and the router's view of the text, stored for the console.
    with ctx.unit_of_work() as session:
        kb = kb_service.knowledge_base(session)
    assert talk.suggestions == suggestions(kb, talk.text)
    assert talk.classification["category"] == Router().classify(talk.text).category
    # Read back the way the ticket page and the console do.
    with ctx.unit_of_work() as session:
        on_ticket = transcript_for_ticket(session, ticket_id)
        by_call = transcript_for_call(session, "call-talk")
        assert transcript_for_call(session, "no-such-call") is None
    assert [t["call_uid"] for t in on_ticket] == ["call-talk"]
    assert by_call == on_ticket[0] and by_call["text"] == talk.text
    done = [p for topic, p in published if topic == "transcript.done"]
    assert {p["call_uid"] for p in done} == {"call-talk", "call-quiet"}
    assert next(p for p in done if p["call_uid"] == "call-talk")["ticket_id"] == ticket_id


def test_backlog_survives_a_restart(
    ctx: HotlineContext, tiny_model: Path, speech: dict, tmp_path: Path
) -> None:
    for n in range(3):
        add_call(ctx, tmp_path, f"call-{n}", speech[8000])
    # A first service queues the calls but has no model: they wait as pending.
    off = service(ctx, tmp_path / "no-model")
    assert asyncio.run(run_once(off)) == 0
    assert off.status()["transcription"] == "off"
    assert {r.status for r in rows(ctx).values()} == {TranscriptStatus.PENDING.value}
    # One row was claimed by a process that then crashed (its pid is gone) and one is still held by a
    # live process elsewhere whose lease has not run out.
    with ctx.unit_of_work() as session:
        by_uid = {
            uid: t for uid, t in session.execute(select(CallRecord.uid, CallTranscript).join(CallTranscript))
        }
        for uid, owner in (("call-0", f"{_host()}:999999:dead"), ("call-1", "elsewhere:1:abcd")):
            by_uid[uid].status, by_uid[uid].claimed_by = TranscriptStatus.RUNNING.value, owner
            by_uid[uid].started_at, by_uid[uid].attempts = ctx.clock.now(), 1
    # A new instance (the restart) takes the pending one and the crashed one, not the live claim.
    assert asyncio.run(run_once(service(ctx, tiny_model))) == 2
    after = rows(ctx)
    assert (after["call-0"].status, after["call-0"].attempts) == (TranscriptStatus.DONE.value, 2)
    assert after["call-2"].status == TranscriptStatus.DONE.value
    assert after["call-1"].status == TranscriptStatus.RUNNING.value
    # Once its lease has run out it is taken over too.
    ctx.clock.advance(timedelta(minutes=20))
    assert asyncio.run(run_once(service(ctx, tiny_model))) == 1
    assert rows(ctx)["call-1"].status == TranscriptStatus.DONE.value


def _host() -> str:
    import socket

    return socket.gethostname()[:32]


@pytest.mark.parametrize("kind", ["missing", "broken", "unset"])
def test_without_a_usable_model_transcription_is_off(
    ctx: HotlineContext,
    kind: str,
    tiny_model: Path,
    broken_model: Path,
    speech: dict,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_call(ctx, tmp_path, "call-x", speech[8000])
    model = {"missing": tmp_path / "gone", "broken": broken_model, "unset": None}[kind]
    svc = service(ctx, model)
    assert asyncio.run(run_once(svc)) == 0
    status = svc.status()
    assert status["transcription"] == "off"
    assert status["model_path"] == (str(model) if model else None)
    if model is not None:
        assert str(model) in status["reason"]
        assert str(model) in caplog.text  # start-up logs the path
    assert rows(ctx)["call-x"].status == TranscriptStatus.PENDING.value
    # A model configured again: the backlog is transcribed.
    assert asyncio.run(run_once(service(ctx, tiny_model))) == 1
    assert rows(ctx)["call-x"].status == TranscriptStatus.DONE.value


def test_a_missing_recording_fails_the_row_not_the_service(
    ctx: HotlineContext, tiny_model: Path, speech: dict, tmp_path: Path
) -> None:
    add_call(ctx, tmp_path, "call-lost", speech[8000])
    add_call(ctx, tmp_path, "call-ok", speech[8000])
    (tmp_path / "call-lost.wav").unlink()
    svc = service(ctx, tiny_model)
    assert asyncio.run(run_once(svc)) == 1
    after = rows(ctx)
    assert after["call-lost"].status == TranscriptStatus.FAILED.value
    assert "recording not found" in after["call-lost"].error
    assert after["call-ok"].status == TranscriptStatus.DONE.value


def test_an_old_backlog_is_a_warning_for_the_dashboard(
    ctx: HotlineContext, speech: dict, tmp_path: Path
) -> None:
    add_call(ctx, tmp_path, "call-waiting", speech[8000])
    off = service(ctx, tmp_path / "no-model")
    asyncio.run(run_once(off))
    assert (off.status()["pending"], off.status()["backlog_warning"]) == (1, False)
    with ctx.unit_of_work() as session:
        row = session.scalar(select(CallTranscript))
        row.queued_at = ctx.clock.now() - timedelta(minutes=20)
    asyncio.run(run_once(off))
    state = off.status()
    assert state["backlog_warning"] is True and state["backlog_age_seconds"] >= 20 * 60


def test_a_long_call_keeps_its_claim_longer(ctx: HotlineContext, speech: dict, tmp_path: Path) -> None:
    add_call(ctx, tmp_path, "call-hour", speech[8000])
    off = service(ctx, tmp_path / "no-model")
    asyncio.run(run_once(off))
    with ctx.unit_of_work() as session:
        record = session.scalar(select(CallRecord).where(CallRecord.uid == "call-hour"))
        record.recording_seconds = 3600.0  # an hour-long call: its transcription may take long
        row = session.scalar(select(CallTranscript))
        row.status, row.claimed_by = TranscriptStatus.RUNNING.value, "elsewhere:1:abcd"
        row.started_at, row.attempts = ctx.clock.now(), 1
    with ctx.unit_of_work() as session:
        svc = service(ctx, tmp_path / "no-model")
        ctx.clock.advance(timedelta(minutes=20))  # past the usual lease, not past 2 x 60 minutes
        assert svc._claim(session, 1) == []
        ctx.clock.advance(timedelta(minutes=101))
        assert [c.call_uid for c in svc._claim(session, 1)] == ["call-hour"]


def test_a_liaison_sees_the_numbers_said_on_a_call_masked(
    ctx: HotlineContext, staff: Staff, speech: dict, tmp_path: Path
) -> None:
    """A citizen reads out a phone number: the department's liaison sees it masked on the ticket page,
    like the caller's number; the operator sees it whole."""
    from fastapi.testclient import TestClient

    from agent_ui.app import create_app
    from tests.agent_ui.conftest import SECRET, page_login
    from tests.conftest import PASSWORD
    from tests.helpers import dispatched

    number = dispatched(ctx, staff, "停水", "sw")
    with ctx.unit_of_work() as session:
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
    add_call(ctx, tmp_path, "call-number", speech[8000], ticket_id)
    with ctx.unit_of_work() as session:
        record = session.scalar(select(CallRecord).where(CallRecord.uid == "call-number"))
        session.add(
            CallTranscript(
                call_record_id=record.id,
                status=TranscriptStatus.DONE.value,
                text="家里停水了，我电话13812345678",
                raw_text="家里停水了，我电话13812345678",
                queued_at=ctx.clock.now(),
            )
        )
    ctx.settings.auth.session_secret = SECRET
    seen = {}
    for user in ("sw1", "op1"):
        client = TestClient(create_app(ctx))
        page_login(client, user, PASSWORD)
        seen[user] = client.get(f"/tickets/{number}").text
    assert "138****5678" in seen["sw1"] and "13812345678" not in seen["sw1"]
    assert "13812345678" in seen["op1"]
