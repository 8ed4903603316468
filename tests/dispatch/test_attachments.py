"""Photos and documents on a ticket (both databases, files on a temporary folder): from the operator,
the liaison and the mayor's mailbox; checked by content, size and count; checksummed; seen only by
the staff who may see the ticket, never by the public."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent_ui.app import create_app
from dispatch.attachments.models import TicketAttachment
from dispatch.attachments.service import sniff
from dispatch.models import Ticket
from hotline.context import HotlineContext
from tests.conftest import PASSWORD, Staff
from tests.helpers import dispatched

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def basic(username: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{PASSWORD}".encode()).decode()}


@pytest.fixture
def client(ctx: HotlineContext, staff: Staff, tmp_path: Path) -> Iterator[TestClient]:
    ctx.settings.dispatch.attachments.folder = tmp_path / "attachments"
    ctx.settings.dispatch.attachments.max_bytes = 64 * 1024
    ctx.settings.auth.session_secret = "test-session-key-0123456789abcdef"
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def upload(
    client: TestClient, number: str, who: str, name: str, data: bytes, kind: str = "image/jpeg"
) -> object:
    return client.post(
        f"/api/tickets/{number}/attachments", files={"file": (name, data, kind)}, headers=basic(who)
    )


def test_the_content_decides_what_a_file_is() -> None:
    assert sniff(JPEG, "x.pdf").content_type == "image/jpeg"  # a photo named .pdf is a photo
    assert sniff(PNG, "a.png").suffix == ".png"
    assert sniff(b"%PDF-1.7\n...", "a.pdf").content_type == "application/pdf"
    assert sniff(docx(), "a.docx").suffix == ".docx"
    assert sniff(b"MZ\x90\x00 a program", "photo.jpg") is None
    empty_zip = io.BytesIO()
    zipfile.ZipFile(empty_zip, "w").writestr("x.txt", "x")
    assert sniff(empty_zip.getvalue(), "a.docx") is None


def test_staff_attach_files_and_read_them_back_unchanged(
    client: TestClient, ctx: HotlineContext, staff: Staff, tmp_path: Path
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    by_operator = upload(client, number, "op1", "现场照片.jpg", JPEG)
    assert by_operator.status_code == 201, by_operator.text
    assert by_operator.json()["sha256"] == hashlib.sha256(JPEG).hexdigest()
    by_liaison = upload(client, number, "sw1", "../../etc/办理记录.docx", docx(), "application/octet-stream")
    assert by_liaison.status_code == 201
    assert by_liaison.json()["filename"] == "办理记录.docx"  # no folders from the client
    assert by_liaison.json()["source_label"] == "承办部门"

    listed = client.get(f"/api/tickets/{number}/attachments", headers=basic("sw1")).json()
    assert [a["filename"] for a in listed] == ["现场照片.jpg", "办理记录.docx"]
    photo = client.get(listed[0]["url"], headers=basic("sw1"))
    assert photo.status_code == 200 and photo.content == JPEG
    assert (
        photo.headers["content-type"] == "image/jpeg" and photo.headers["x-content-type-options"] == "nosniff"
    )
    assert "filename*=UTF-8''" in photo.headers["content-disposition"]
    stored = list((tmp_path / "attachments").rglob("*.jpg"))
    assert len(stored) == 1 and stored[0].read_bytes() == JPEG

    # Another department sees neither the list nor a file; nobody unauthenticated does.
    assert client.get(f"/api/tickets/{number}/attachments", headers=basic("cg1")).status_code == 403
    assert client.get(listed[0]["url"], headers=basic("cg1")).status_code == 403
    assert client.get(listed[0]["url"]).status_code == 401
    assert upload(client, number, "cg1", "a.jpg", JPEG).status_code == 403


def test_wrong_too_large_or_empty_files_are_refused_in_chinese_and_nothing_is_stored(
    client: TestClient, ctx: HotlineContext, staff: Staff, tmp_path: Path
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    program = upload(client, number, "op1", "photo.jpg", b"MZ\x90\x00" + bytes(100))
    assert program.status_code == 415 and "只能上传照片" in program.json()["detail_zh"]
    big = upload(client, number, "op1", "big.jpg", JPEG + bytes(70 * 1024))
    assert big.status_code == 413 and "MB" in big.json()["detail_zh"]
    empty = upload(client, number, "op1", "empty.jpg", b"")
    assert empty.status_code in (400, 422)
    with ctx.unit_of_work() as session:
        assert session.scalars(select(TicketAttachment)).all() == []
    assert not list((tmp_path / "attachments").rglob("*.*"))


def test_a_damaged_file_is_reported_not_served(
    client: TestClient, ctx: HotlineContext, staff: Staff, tmp_path: Path
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    url = upload(client, number, "op1", "a.png", PNG, "image/png").json()["url"]
    [path] = list((tmp_path / "attachments").rglob("*.png"))
    path.write_bytes(PNG[:-1] + b"\x01")
    damaged = client.get(url, headers=basic("op1"))
    assert damaged.status_code == 410 and "损坏" in damaged.json()["detail_zh"]


def test_a_letter_to_the_mailbox_brings_its_photos_and_a_bad_one_keeps_the_letter(
    client: TestClient, ctx: HotlineContext
) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/xinxiang").text)
    assert token
    form = {
        "csrf_token": token.group(1),
        "content": "幸福路东段的路灯坏了一排，晚上很黑",
        "phone": "13812345678",
    }
    bad = client.post("/xinxiang", data=form, files=[("photos", ("x.jpg", b"MZ not a photo", "image/jpeg"))])
    assert bad.status_code == 415 and "只能上传照片" in bad.text and "幸福路东段的路灯坏了一排" in bad.text
    with ctx.unit_of_work() as session:
        assert session.scalars(select(Ticket)).all() == []
    sent = client.post(
        "/xinxiang",
        data=form,
        files=[("photos", ("路灯.jpg", JPEG, "image/jpeg")), ("photos", ("位置.png", PNG, "image/png"))],
    )
    assert sent.status_code == 200, sent.text
    number = re.search(r'id="ticket-number">([^<]+)<', sent.text)
    assert number
    with ctx.unit_of_work() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == number.group(1)))
        rows = session.scalars(select(TicketAttachment).where(TicketAttachment.ticket_id == ticket.id)).all()
        assert [(r.filename, r.source) for r in rows] == [("路灯.jpg", "mailbox"), ("位置.png", "mailbox")]
    public = client.get("/api/public/disclosure").text + client.get("/gongkai").text
    assert "路灯.jpg" not in public and "attachments" not in public
