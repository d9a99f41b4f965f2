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


# --- alerts (notifications): the app's list shows the subject and text; email sends them --

_ALERTS: dict[str, dict[str, Mail]] = {
    "balance_low": {
        "en": Mail(
            "Your tokenbank balance is below {threshold} tokens",
            "Hello {username},\n\nYou have {available} tokens left, below the "
            "{threshold} you asked us to watch for. Buy a pack or turn on auto top-up "
            "so you never run dry:\n\n{link}\n",
        ),
        "zh": Mail(
            "您的 tokenbank 余额已低于 {threshold} 个令牌",
            "{username}，您好：\n\n您只剩 {available} 个令牌，低于您设置的提醒值 "
            "{threshold}。购买令牌包或开启自动充值，以免余额用尽：\n\n{link}\n",
        ),
    },
    "topup_succeeded": {
        "en": Mail(
            "Auto top-up: {tokens} tokens added",
            "Hello {username},\n\nYour balance fell below your threshold, so we bought "
            "the {tier} pack ({tokens} tokens) with your saved card. Stripe sends the "
            "receipt separately.\n\n{link}\n",
        ),
        "zh": Mail(
            "自动充值：已添加 {tokens} 个令牌",
            "{username}，您好：\n\n您的余额低于设定值，我们已用您保存的银行卡购买了 "
            "{tier} 令牌包（{tokens} 个令牌）。收据由 Stripe 另行发送。\n\n{link}\n",
        ),
    },
    "topup_failed": {
        "en": Mail(
            "Auto top-up failed: your card was declined",
            "Hello {username},\n\nWe tried to buy the {tier} pack with your saved card, "
            "but it was declined ({reason}). Auto top-up is paused until you finish the "
            "payment or choose another card here:\n\n{link}\n",
        ),
        "zh": Mail(
            "自动充值失败：您的银行卡被拒绝",
            "{username}，您好：\n\n我们尝试用您保存的银行卡购买 {tier} 令牌包，但被拒绝"
            "（{reason}）。自动充值已暂停，请在此完成付款或更换银行卡：\n\n{link}\n",
        ),
    },
    "topup_paused": {
        "en": Mail(
            "Auto top-up paused: your bank asks you to confirm",
            "Hello {username},\n\nYour bank wants you to confirm the purchase of the "
            "{tier} pack. Auto top-up is paused until you do; confirm it here:\n\n{link}\n",
        ),
        "zh": Mail(
            "自动充值已暂停：您的银行要求确认",
            "{username}，您好：\n\n您的银行要求您确认购买 {tier} 令牌包。确认之前自动充值"
            "已暂停，请在此确认：\n\n{link}\n",
        ),
    },
    "topup_disabled": {
        "en": Mail(
            "Auto top-up turned off after {failures} failed attempts",
            "Hello {username},\n\n{failures} auto top-ups in a row did not go through, so "
            "we turned auto top-up off. You can turn it on again with another card:\n\n"
            "{link}\n",
        ),
        "zh": Mail(
            "连续 {failures} 次失败后，自动充值已关闭",
            "{username}，您好：\n\n连续 {failures} 次自动充值未能成功，我们已关闭自动充值。"
            "您可以更换银行卡后重新开启：\n\n{link}\n",
        ),
    },
    "subscription_renewed": {
        "en": Mail(
            "Your {plan} plan renewed: {tokens} tokens added",
            "Hello {username},\n\nYour {plan} plan renewed and {tokens} tokens were added "
            "to your balance. They expire on {expires_on}.\n\n{link}\n",
        ),
        "zh": Mail(
            "您的 {plan} 方案已续订：已添加 {tokens} 个令牌",
            "{username}，您好：\n\n您的 {plan} 方案已续订，{tokens} 个令牌已加入您的余额，"
            "将于 {expires_on} 过期。\n\n{link}\n",
        ),
    },
    "renewal_failed": {
        "en": Mail(
            "Your {plan} plan could not be renewed",
            "Hello {username},\n\nWe could not charge your card for your {plan} plan, so "
            "this month's tokens have not been added. Update your card here and we will "
            "try again:\n\n{link}\n",
        ),
        "zh": Mail(
            "您的 {plan} 方案续订失败",
            "{username}，您好：\n\n我们未能从您的银行卡扣款续订 {plan} 方案，本月的令牌尚未"
            "添加。请在此更新银行卡，我们会再次尝试：\n\n{link}\n",
        ),
    },
    "lots_expiring": {
        "en": Mail(
            "{tokens} of your tokens expire on {expires_on}",
            "Hello {username},\n\n{tokens} tokens in your balance expire on {expires_on}. "
            "Tokens that expire soonest are spent first.\n\n{link}\n",
        ),
        "zh": Mail(
            "您有 {tokens} 个令牌将于 {expires_on} 过期",
            "{username}，您好：\n\n您余额中的 {tokens} 个令牌将于 {expires_on} 过期。"
            "最早过期的令牌会最先使用。\n\n{link}\n",
        ),
    },
}

_ALERT_FALLBACK = {
    "en": Mail("tokenbank: {kind}", "Hello {username},\n\n{kind}\n\n{link}\n"),
    "zh": Mail("tokenbank：{kind}", "{username}，您好：\n\n{kind}\n\n{link}\n"),
}


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def alert(locale: str, kind: str, *, username: str, link: str, data: dict[str, object]) -> Mail:
    """The subject and text of one alert (a notification's title and body, and its email)."""
    mail = _ALERTS.get(kind, _ALERT_FALLBACK)[locale_of(locale)]
    values = _Blank({**data, "username": username, "link": link, "kind": kind})
    return Mail(mail.subject.format_map(values), mail.text.format_map(values))
