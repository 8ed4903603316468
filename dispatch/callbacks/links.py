"""Web survey links: a random token in the SMS, only its SHA-256 in the database; single use, expiring.

Spending a link is one conditional UPDATE (not used yet, not expired), so two submissions of the same
link at the same moment end with exactly one recorded answer.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.clock import Clock
from dispatch.callbacks.models import Callback, SmsMessage, SurveyLink
from dispatch.callbacks.service import CallbackError
from dispatch.callbacks.sms import SmsBackend, send_sms


class LinkRefused(CallbackError):
    """The link is unknown, used or expired."""

    status = 410


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_link(session: Session, clock: Clock, callback_id: int, valid_hours: float) -> str:
    token = secrets.token_urlsafe(24)
    now = clock.now()
    session.add(
        SurveyLink(
            callback_id=callback_id,
            token_sha256=_digest(token),
            created_at=now,
            expires_at=now + timedelta(hours=valid_hours),
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class LinkView:
    link: SurveyLink
    callback: Callback


def open_link(session: Session, clock: Clock, token: str) -> LinkView:
    """The link and its callback, or LinkRefused saying why (for the page)."""
    link = session.scalar(select(SurveyLink).where(SurveyLink.token_sha256 == _digest(token)))
    if link is None:
        raise LinkRefused("unknown survey link", "链接无效，请核对短信中的地址")
    if link.used_at is not None:
        raise LinkRefused("this survey link was already used", "该评价链接已使用，感谢您的评价")
    if link.expires_at <= clock.now():
        raise LinkRefused("this survey link has expired", "该评价链接已过期")
    callback = session.get(Callback, link.callback_id)
    assert callback is not None
    return LinkView(link, callback)


def spend_link(session: Session, clock: Clock, token: str) -> Callback:
    """Mark the link used (exactly once) and return its callback; LinkRefused otherwise."""
    view = open_link(session, clock, token)
    now = clock.now()
    spent = session.execute(
        update(SurveyLink)
        .where(SurveyLink.id == view.link.id, SurveyLink.used_at.is_(None), SurveyLink.expires_at > now)
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise LinkRefused("this survey link was already used", "该评价链接已使用，感谢您的评价")
    return view.callback


def send_survey_link(
    session: Session,
    clock: Clock,
    backend: SmsBackend,
    callback: Callback,
    base_url: str,
    valid_hours: float,
) -> SmsMessage:
    """Create a link for `callback` and text it to the citizen's phone."""
    if not callback.phone:
        raise CallbackError(f"callback {callback.id} has no phone number", "该工单没有联系电话，无法发送短信")
    token = create_link(session, clock, callback.id, valid_hours)
    url = f"{base_url.rstrip('/')}/s/{token}"
    text = (
        f"【12345热线】您反映的工单{callback.ticket.number}已办理答复，"
        f"请点击 {url} 评价办理结果（{valid_hours:g}小时内有效，仅限一次）。"
    )
    return send_sms(session, backend, clock, callback.phone, text, callback.id)
