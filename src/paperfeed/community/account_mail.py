"""Account mail: the password-reset link, the address-confirmation link, and the notice to an
address that is already registered - composed here and handed to the mail transport.

Every one of them goes out *after* the web response (``BackgroundTasks``): the request only
validates and queues, so neither the answer nor its timing depends on whether an account uses
the address. A mail that cannot be sent is logged, never shown to the person who asked (the
answer must not change); they can ask again. Each takes a slot from the per-mailbox cap
(``mail.mailbox``) inside the caller's transaction before it is composed.
"""

from __future__ import annotations

import logging
import secrets

from paperfeed.community.core import Community
from paperfeed.mail.mailer import MailError, build_message, open_transport

log = logging.getLogger(__name__)


def _deliver(c: Community, to: str, subject: str, text: str, kind: str) -> bool:
    """Send one plain-text mail now (``c.send_mail`` when set, else SMTP or the outbox).
    Returns False (and logs) when it could not be handed over."""
    domain = c.settings.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"
    msg = build_message(
        sender=c.settings.mail_from,
        to=to,
        subject=subject,
        text=text,
        html=None,
        message_id=f"<{kind}-{secrets.token_hex(12)}@{domain}>",
        date=c.now(),
    )
    try:
        if c.send_mail is not None:
            c.send_mail(msg)
            return True
        transport = open_transport(c.settings, per_connection=1)
        try:
            transport.send(msg)
        finally:
            transport.close()
    except (MailError, ValueError, OSError) as exc:
        log.warning("account mail (%s) could not be sent: %s", kind, exc)
        return False
    return True


def send_reset_link(c: Community, username: str, address: str, token: str, minutes: int) -> bool:
    link = f"{c.settings.base_url}/reset/{token}"
    text = (
        f"Hello {username},\n\nsomeone (hopefully you) asked to reset the password of your paperfeed account.\n"
        f"Open this link within {minutes} minutes to choose a new password; it works once:\n\n{link}\n\n"
        "If you did not ask for this, ignore this message: your password stays as it is.\n"
    )
    return _deliver(c, address, "Reset your paperfeed password", text, "reset")


def send_confirm_link(c: Community, username: str, address: str, link: str, days: int) -> bool:
    text = (
        f"Hello {username},\n\nplease confirm that this is your address for the paperfeed account "
        f"{username!r}: open this link within {days} days and press the button on the page.\n\n{link}\n\n"
        "Until then the account can read and upvote, but not comment or submit papers.\n\n"
        "If you did not sign up, ignore this message: the address stays unconfirmed and nothing else "
        "is sent to it.\n"
    )
    return _deliver(c, address, "Confirm your email address for paperfeed", text, "confirm")


def send_address_in_use(c: Community, owner: str, address: str) -> bool:
    """Somebody signed up with an address that already has an account: tell its owner, with no
    link that would tie the address to the new account."""
    base = c.settings.base_url
    text = (
        f"Hello {owner},\n\nsomeone just created a paperfeed account with this email address, which "
        f"already belongs to your account {owner!r}. The new account cannot use the address.\n\n"
        f"If that was you: sign in at {base}/signin with your username {owner!r}; if you forgot "
        f"your password, choose a new one at {base}/reset.\n\n"
        "If it was not you, ignore this message: nothing changed on your account.\n"
    )
    return _deliver(c, address, "Your paperfeed account already uses this address", text, "in-use")
