"""The attachments of a ticket over HTTP: upload (multipart), list, download. Whoever may see the
ticket may see and add its files; every upload and every download is in the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import Path, UploadFile, status
from fastapi.responses import Response
from pydantic import BaseModel

from core.accounts.models import Role
from core.web import api_router
from dispatch.attachments.models import TicketAttachment
from dispatch.attachments.service import attachments_of
from dispatch.desk import DeskDep

router = api_router(prefix="/api", tags=["attachments"])

NumberPath = Annotated[str, Path(pattern=r"^[0-9]{8}-[0-9]{3,8}$")]
SOURCES = {
    Role.OPERATOR: "operator",
    Role.LIAISON: "liaison",
    Role.SUPERVISOR: "supervisor",
    Role.ADMIN: "admin",
}
SOURCE_LABELS = {
    "operator": "话务员",
    "liaison": "承办部门",
    "supervisor": "督办员",
    "admin": "管理员",
    "mailbox": "市民来信",
}


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    source: str
    source_label: str
    uploaded_by: str
    uploaded_at: datetime
    url: str


def attachment_out(number: str, row: TicketAttachment) -> AttachmentOut:
    return AttachmentOut(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        sha256=row.sha256,
        source=row.source,
        source_label=SOURCE_LABELS.get(row.source, row.source),
        uploaded_by=row.uploaded_by,
        uploaded_at=row.uploaded_at,
        url=f"/api/tickets/{number}/attachments/{row.id}",
    )


@router.get("/tickets/{number}/attachments")
def list_attachments(number: NumberPath, desk: DeskDep) -> list[AttachmentOut]:
    ticket = desk.tickets.get(number, desk.actor)
    return [attachment_out(number, row) for row in attachments_of(desk.ctx, desk.session).of(ticket)]


@router.post("/tickets/{number}/attachments", status_code=status.HTTP_201_CREATED)
async def add_attachment(number: NumberPath, file: UploadFile, desk: DeskDep) -> AttachmentOut:
    """A photo (JPG, PNG, GIF, WEBP) or a document (PDF, Word, Excel), within the configured size."""
    ticket = desk.tickets.get(number, desk.actor)
    store = attachments_of(desk.ctx, desk.session)
    data = await file.read(store.settings.max_bytes + 1)  # no more than one byte over the limit
    row = store.add(
        ticket, file.filename, data, SOURCES.get(desk.actor.role, "operator"), desk.user.display_name
    )
    desk.audit("ticket.attachment.add", number, detail={"file": row.filename, "sha256": row.sha256})
    desk.commit()
    return attachment_out(number, row)


@router.get("/tickets/{number}/attachments/{attachment_id}", response_class=Response)
def download_attachment(number: NumberPath, attachment_id: int, desk: DeskDep) -> Response:
    ticket = desk.tickets.get(number, desk.actor)
    store = attachments_of(desk.ctx, desk.session)
    row = store.get(ticket, attachment_id)
    data = store.read(row)
    desk.audit("ticket.attachment.view", number, detail={"file": row.filename})
    desk.commit()
    inline = row.content_type.startswith("image/") or row.content_type == "application/pdf"
    disposition = f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(row.filename)}"
    headers = {
        "Content-Disposition": disposition,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private",
    }
    return Response(data, media_type=row.content_type, headers=headers)
