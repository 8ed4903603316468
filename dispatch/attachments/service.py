"""Adding, listing and reading the files of a ticket.

A file is accepted by what it is, read from its first bytes (a photo renamed .pdf, or a program
renamed .jpg, is refused), within the size and count limits of the configuration. It is written
once under its SHA-256 (fsynced, then renamed into place), and checked against that checksum when
it is read back.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import Clock
from core.errors import HotlineError, NotFound, RuleViolation, TooLarge, UnsupportedMediaType
from dispatch.attachments.models import TicketAttachment
from dispatch.attachments.settings import AttachmentSettings
from dispatch.context import DispatchContext
from dispatch.models import Ticket

ALLOWED_ZH = "只能上传照片（JPG、PNG、GIF、WEBP）或文档（PDF、Word、Excel）"


@dataclass(frozen=True)
class Kind:
    content_type: str
    suffix: str


_OFFICE_ZIP = {
    "word/": Kind("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
    "xl/": Kind("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
}
_OLE = {".doc": Kind("application/msword", ".doc"), ".xls": Kind("application/vnd.ms-excel", ".xls")}


def sniff(data: bytes, filename: str) -> Kind | None:
    """What the file is, from its content (the name only tells the old Office formats apart)."""
    if data.startswith(b"\xff\xd8\xff"):
        return Kind("image/jpeg", ".jpg")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind("image/png", ".png")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return Kind("image/gif", ".gif")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return Kind("image/webp", ".webp")
    if data.startswith(b"%PDF-"):
        return Kind("application/pdf", ".pdf")
    if data.startswith(b"PK\x03\x04"):
        return _office_zip(data)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _OLE.get(Path(filename).suffix.lower())
    return None


def _office_zip(data: bytes) -> Kind | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return None
    for prefix, kind in _OFFICE_ZIP.items():
        if "[Content_Types].xml" in names and any(n.startswith(prefix) for n in names):
            return kind
    return None


def clean_name(filename: str | None, kind: Kind) -> str:
    """The uploaded name without folders or control characters, at most 200 characters."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", Path((filename or "").replace("\\", "/")).name).strip()
    name = name or f"附件{kind.suffix}"
    stem, suffix = os.path.splitext(name)
    return stem[: 200 - len(suffix[:20])] + suffix[:20]


def check_file(settings: AttachmentSettings, filename: str | None, data: bytes) -> Kind:
    """Raise unless the file may be attached (size and type); nothing is stored, no database needed."""
    limit = settings.max_bytes
    if not data:
        raise RuleViolation(f"{filename or 'the file'} is empty", f"文件「{filename or ''}」是空的")
    if len(data) > limit:
        raise TooLarge(
            f"{filename} is larger than {limit} bytes",
            f"文件「{filename}」超过 {limit // (1024 * 1024) or 1} MB，请压缩后再上传",
        )
    kind = sniff(data, filename or "")
    if kind is None:
        raise UnsupportedMediaType(f"{filename} is not a photo or a document we accept", ALLOWED_ZH)
    return kind


class Attachments:
    def __init__(self, session: Session, settings: AttachmentSettings, folder: Path, clock: Clock) -> None:
        self.session, self.settings, self.folder, self.clock = session, settings, folder, clock

    def check(self, filename: str | None, data: bytes) -> Kind:
        return check_file(self.settings, filename, data)

    def count(self, ticket: Ticket) -> int:
        query = select(func.count()).select_from(TicketAttachment)
        return self.session.scalar(query.where(TicketAttachment.ticket_id == ticket.id)) or 0

    def add(
        self, ticket: Ticket, filename: str | None, data: bytes, source: str, by: str
    ) -> TicketAttachment:
        kind = self.check(filename, data)
        if self.count(ticket) >= self.settings.max_per_ticket:
            limit = self.settings.max_per_ticket
            raise RuleViolation(
                f"ticket {ticket.number} already has {limit} attachments", f"每张工单最多 {limit} 个附件"
            )
        digest = hashlib.sha256(data).hexdigest()
        now = self.clock.now()
        stored_as = f"{now:%Y/%m}/{digest}{kind.suffix}"
        self._write(self.folder / stored_as, data)
        row = TicketAttachment(
            ticket_id=ticket.id,
            filename=clean_name(filename, kind),
            stored_as=stored_as,
            content_type=kind.content_type,
            size=len(data),
            sha256=digest,
            source=source,
            uploaded_by=by[:64],
            uploaded_at=now,
        )
        self.session.add(row)
        self.session.flush()
        return row

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        """Once per content: a second upload of the same file shares it. Durable before the row."""
        if path.exists() and path.stat().st_size == len(data):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)

    def of(self, ticket: Ticket) -> list[TicketAttachment]:
        query = select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)
        return list(self.session.scalars(query.order_by(TicketAttachment.id)))

    def get(self, ticket: Ticket, attachment_id: int) -> TicketAttachment:
        row = self.session.get(TicketAttachment, attachment_id)
        if row is None or row.ticket_id != ticket.id:
            raise NotFound(f"no attachment {attachment_id} on ticket {ticket.number}", "附件不存在")
        return row

    def read(self, row: TicketAttachment) -> bytes:
        path = self.folder / row.stored_as
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise MissingFile(
                f"the file of attachment {row.id} is missing", "附件文件已丢失，请联系管理员"
            ) from None
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise MissingFile(
                f"the file of attachment {row.id} is damaged", "附件文件已损坏（校验不符），请联系管理员"
            )
        return data


class MissingFile(HotlineError):
    status = 410


def attachments_of(ctx: DispatchContext, session: Session) -> Attachments:
    """The attachments of a running hotline, on `session`."""
    settings = ctx.settings.dispatch.attachments
    return Attachments(session, settings, ctx.settings.resolve(settings.folder), ctx.clock)
