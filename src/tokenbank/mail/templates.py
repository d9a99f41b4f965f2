"""The emails we send, in English and Chinese (the person's ``locale``)."""

from __future__ import annotations

from dataclasses import dataclass

from tokenbank.types import LOCALES


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str


_VERIFY = {
    "en": Mail(
        "Confirm your email for tokenbank",
        "Hello {username},\n\n"
        "Please confirm your email address by opening this link:\n\n{link}\n\n"
        "Your welcome bonus of {bonus} tokens is added once the address is confirmed.\n"
        "The link works once and expires in {hours} hours. If you did not sign up, "
        "ignore this email.\n",
    ),
    "zh": Mail(
        "请确认您在 tokenbank 的邮箱",
        "{username}，您好：\n\n请打开以下链接确认您的邮箱地址：\n\n{link}\n\n"
        "确认后将发放 {bonus} 个令牌的欢迎奖励。\n"
        "该链接只能使用一次，{hours} 小时后失效。如果您没有注册，请忽略本邮件。\n",
    ),
}

_RESET = {
    "en": Mail(
        "Reset your tokenbank password",
        "Hello {username},\n\n"
        "Someone asked to reset the password of your tokenbank account. To choose a new "
        "password, open this link:\n\n{link}\n\n"
        "The link works once and expires in {minutes} minutes. Setting a new password "
        "signs you out everywhere. If you did not ask for this, ignore this email; your "
        "password stays as it is.\n",
    ),
    "zh": Mail(
        "重置您的 tokenbank 密码",
        "{username}，您好：\n\n"
        "有人请求重置您的 tokenbank 账户密码。要设置新密码，请打开以下链接：\n\n"
        "{link}\n\n"
        "该链接只能使用一次，{minutes} 分钟后失效。"
        "设置新密码后，您将在所有设备上退出登录。"
        "如果这不是您本人的操作，请忽略本邮件，您的密码不会改变。\n",
    ),
}


def locale_of(value: str | None) -> str:
    return value if value in LOCALES else "en"


def verify_email(locale: str, *, username: str, link: str, bonus: int, ttl_s: int) -> Mail:
    mail = _VERIFY[locale_of(locale)]
    values = {"username": username, "link": link, "bonus": bonus, "hours": max(1, ttl_s // 3600)}
    return Mail(mail.subject, mail.text.format(**values))


def reset_password(locale: str, *, username: str, link: str, ttl_s: int) -> Mail:
    mail = _RESET[locale_of(locale)]
    values = {"username": username, "link": link, "minutes": max(1, ttl_s // 60)}
    return Mail(mail.subject, mail.text.format(**values))
