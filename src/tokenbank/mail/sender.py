"""Sending through SMTP (aiosmtplib). A message that cannot be sent is logged, never raised:
the request that asked for it has already committed, and the person can ask again."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from tokenbank.config import Settings
from tokenbank.mail.templates import Mail

log = logging.getLogger(__name__)


def build(settings: Settings, to: str, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="tokenbank")
    message.set_content(mail.text, charset="utf-8")
    return message


async def send(settings: Settings, to: str, mail: Mail) -> bool:
    """Send ``mail`` to ``to``; True when the SMTP server accepted it."""
    if not settings.smtp_host:
        log.warning("email not sent: SMTP_HOST is not set", extra={"subject": mail.subject})
        return False
    message = build(settings, to, mail)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=True if settings.smtp_tls == "starttls" else False,
            timeout=settings.smtp_timeout_s,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        log.error("email not sent: %s: %s", type(exc).__name__, exc)
        return False
    return True
