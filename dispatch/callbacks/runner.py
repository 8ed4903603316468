"""The automatic survey calls: claim a due callback, call the citizen through the call centre, record
what they pressed. `hotline serve` runs `run_once` on a timer (APScheduler, like the SLA sweeps) in
the event loop of the queue controller; every fact lives in the callback queue, so a restarted or a
second process needs nothing else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callcenter.dialer import Menu
from callcenter.prompts import say
from callcenter.service import CallCenterError
from dispatch.callbacks.links import send_survey_link
from dispatch.callbacks.models import AttemptOutcome, Callback, CallbackState
from dispatch.callbacks.service import DIGIT_RESULTS, Claim, callbacks_of, process_name
from dispatch.callbacks.sms import backend_for

if TYPE_CHECKING:
    from callcenter.dialer import Dialer
    from dispatch.context import DispatchContext

log = logging.getLogger("dispatch.callbacks")
BUSY_STATUSES = {486, 600, 603}
SOLVED_KEYS = {"1": True, "2": False}


def attempt_outcome(result: dict[str, Any]) -> tuple[AttemptOutcome, str | None]:
    """What a finished survey call means for the callback: the attempt's outcome and the result."""
    if result.get("outcome") == "not_reached":
        busy = result.get("status") in BUSY_STATUSES
        return (AttemptOutcome.BUSY if busy else AttemptOutcome.NO_ANSWER), None
    if result.get("outcome") != "completed":
        return AttemptOutcome.FAILED, None
    menu = result.get("menu")
    if menu == "chosen":
        return AttemptOutcome.ANSWERED, DIGIT_RESULTS[str(result.get("choice"))]
    if menu == "no_input":
        return AttemptOutcome.NO_INPUT, None
    if menu == "invalid_input":
        return AttemptOutcome.INVALID_INPUT, None
    return AttemptOutcome.HUNG_UP, None


class SurveyRunner:
    def __init__(self, ctx: DispatchContext, controller: Dialer | None, prompts_dir: Path | None) -> None:
        self.ctx = ctx
        self.controller = controller
        self.settings = ctx.settings.callbacks
        self.summaries = (prompts_dir / "summaries") if prompts_dir else None
        self.claimer = process_name()
        self.calls: set[asyncio.Task[None]] = set()
        self.finished: list[dict[str, Any]] = []  # what each call of this process came to (bench, tests)
        self.on_finished: Callable[[dict[str, Any]], None] | None = None
        self._speaking = threading.Lock()  # one espeak-ng run per summary, even for calls at once

    # --- the timer's job -----------------------------------------------------------------------
    async def run_once(self) -> int:
        """Housekeeping, then place as many due survey calls as there are free places; returns how many."""
        await asyncio.to_thread(self._housekeeping)  # set-based SQL and maybe SMS: off the event loop
        if self.controller is None:
            return 0
        placed = 0
        while len(self.calls) < self.settings.concurrent_calls and self._free_workers() > 0:
            with self.ctx.unit_of_work() as session:
                claim = callbacks_of(self.ctx, session).claim_next(self.claimer)
            if claim is None:  # committed above: from here on nobody else will dial this attempt
                break
            task = asyncio.create_task(self._survey(claim), name=f"survey-{claim.callback_id}")
            self.calls.add(task)
            task.add_done_callback(self.calls.discard)
            placed += 1
        return placed

    def _housekeeping(self) -> None:
        with self.ctx.unit_of_work() as session:
            service = callbacks_of(self.ctx, session)
            service.enqueue_replied()
            for callback in service.recover_stale():
                self._after_failure(session, callback)

    def _free_workers(self) -> int:
        assert self.controller is not None
        return self.controller.idle_workers()

    async def wait_idle(self) -> None:
        while self.calls:
            await asyncio.gather(*list(self.calls), return_exceptions=True)

    # --- one call ------------------------------------------------------------------------------
    async def _survey(self, claim: Claim) -> None:
        assert self.controller is not None
        outcome, result, uid, digits, solved = AttemptOutcome.FAILED, None, None, None, None
        try:
            menu = await asyncio.to_thread(self.menu_for, claim)
            call = await self.controller.dial(
                claim.phone or "", [], self.settings.ring_seconds, claim.ticket_id, menu=menu
            )
            assert call.done is not None
            uid = call.uid
            done = await call.done
            digits = done.get("digits")
            outcome, result = attempt_outcome(done)
            solved = SOLVED_KEYS.get(str(done.get("follow_choice"))) if result else None
        except CallCenterError as exc:
            log.warning("survey call for callback %s not placed: %s", claim.callback_id, exc)
        except Exception:
            log.exception("survey call for callback %s", claim.callback_id)
        report = {"callback_id": claim.callback_id, "attempt": claim.attempt, "outcome": outcome.value}
        report.update(await asyncio.to_thread(self._record, claim, outcome, result, uid, digits, solved))
        self.finished.append(report)
        if self.on_finished is not None:
            self.on_finished(report)

    def _record(
        self,
        claim: Claim,
        outcome: AttemptOutcome,
        result: str | None,
        uid: str | None,
        digits: str | None,
        solved: bool | None = None,
    ) -> dict[str, Any]:
        try:
            with self.ctx.unit_of_work() as session:
                service = callbacks_of(self.ctx, session)
                note = f"电话自动回访，按键 {digits}" if result else None
                callback = service.finish(
                    claim, outcome, result, solved=solved, note=note, call_uid=uid, digits=digits
                )
                self._after_failure(session, callback)
                return {"result": result, "state": callback.state}
        except Exception as exc:  # a late report of a claim recovered as stale: logged, nothing changed
            log.error("result of callback %s not recorded: %s", claim.callback_id, exc)
            return {"error": str(exc)}

    def _after_failure(self, session: Any, callback: Callback) -> None:
        """An unreachable citizen gets the web survey link by SMS (when configured)."""
        if callback.state != CallbackState.UNREACHABLE.value or not self.settings.sms_link_when_unreachable:
            return
        if not callback.phone:
            return
        backend = backend_for(self.settings.sms, self.ctx.settings.base_dir)
        send_survey_link(
            session,
            self.ctx.clock,
            backend,
            callback,
            self.settings.public_base_url,
            self.settings.link_valid_hours,
        )

    # --- prompts ---------------------------------------------------------------------------------
    def menu_for(self, claim: Claim) -> Menu:
        """Intro, the ticket number digit by digit, the reply if short, the question, then whether the
        matter was solved."""
        assert self.controller is not None
        prompts = self.controller.prompts
        opening = [prompts.path("survey_intro")]
        opening += [prompts.path(f"digit_{d}") for d in claim.ticket_number if d.isdigit()]
        summary = self.summary_prompt(claim.reply_text)
        if summary is not None:
            opening.append(summary)
        return Menu(
            opening=opening,
            question=[prompts.path("survey_question")],
            retry=[prompts.path("survey_no_input")],
            thanks=[prompts.path("survey_thanks")],
            goodbye=[prompts.path("goodbye")],
            wait_seconds=self.settings.digit_wait_seconds,
            follow_up=[prompts.path("survey_solved")],
        )

    def summary_prompt(self, reply: str | None) -> Path | None:
        """The department's reply spoken (espeak-ng), when short enough; generated once per text."""
        text = (reply or "").strip()
        if not text or len(text) > self.settings.summary_max_chars or self.summaries is None:
            return None
        spoken = f"办理结果：{text}。"
        path = self.summaries / f"{hashlib.sha256(spoken.encode()).hexdigest()[:20]}.wav"
        with self._speaking:
            return path if path.exists() else say(spoken, path)
