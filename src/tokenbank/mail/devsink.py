"""Development only: a local SMTP sink and the page that shows what it caught.

``tokenbank dev`` starts :func:`start_sink` (aiosmtpd) on 127.0.0.1 and points the app's
SMTP settings at it; every message lands in a Maildir (``DEV_MAIL_DIR``), which
``GET /dev/mail`` lists newest first. Outside development that page is a 404.
"""

from __future__ import annotations

import html
import mailbox
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from tokenbank.config import Settings

router = APIRouter(include_in_schema=False)


def start_sink(mail_dir: Path, port: int, host: str = "127.0.0.1") -> Controller:
    """A running SMTP server on ``host:port`` keeping every message in ``mail_dir``."""
    mail_dir.parent.mkdir(parents=True, exist_ok=True)
    mailbox.Maildir(mail_dir, create=True)  # cur/, new/, tmp/
    controller = Controller(Mailbox(mail_dir), hostname=host, port=port)
    controller.start()
    return controller


@dataclass(frozen=True, slots=True)
class CaughtMail:
    to: str
    subject: str
    text: str
    received_at: datetime


def text_of(message: Message) -> str:
    """The plain-text body of a message, decoded."""
    part = message
    if message.is_multipart():
        for candidate in message.walk():
            if candidate.get_content_type() == "text/plain":
                part = candidate
                break
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


def subject_of(message: Message) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(message.get("Subject", ""))))


def read_mail(mail_dir: Path) -> list[CaughtMail]:
    if not (mail_dir / "new").is_dir():
        return []
    box = mailbox.Maildir(mail_dir, create=False)
    caught = []
    for message in box.values():
        received = datetime.fromtimestamp(message.get_date(), tz=UTC)  # delivery time
        caught.append(
            CaughtMail(str(message.get("To", "")), subject_of(message), text_of(message), received)
        )
    return sorted(caught, key=lambda m: m.received_at, reverse=True)


_URL = re.compile(r"https?://[^\s<>&\"]+")


def _page(mails: list[CaughtMail]) -> str:
    items = []
    for mail in mails:
        body = _URL.sub(
            lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', html.escape(mail.text)
        )
        items.append(
            f"<article><h2>{html.escape(mail.subject)}</h2>"
            f"<p>To: {html.escape(mail.to)} · {mail.received_at:%Y-%m-%d %H:%M:%S} UTC</p>"
            f"<pre>{body}</pre></article>"
        )
    listing = "".join(items) or "<p>No mail yet.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Caught mail</title></head>"
        "<body><h1>Mail caught by the development SMTP server</h1>"
        f"{listing}</body></html>"
    )


@router.get("/dev/mail", response_class=HTMLResponse)
async def caught_mail(request: Request) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    if settings.app_env != "development" or not settings.dev_mail_dir:
        raise HTTPException(status_code=404)
    return HTMLResponse(_page(read_mail(Path(settings.dev_mail_dir))))
