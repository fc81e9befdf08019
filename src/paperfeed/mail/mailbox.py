"""One mailbox, however the address is spelled: the key and the cap on mail nobody asked for.

Anyone can type any address into the sign-up, reset and digest forms, and ``victim+1@x``,
``victim+2@x``, ``VICTIM@x`` all reach the same inbox. Every mail sent because somebody typed an
address (account confirmation, sign-up notice, password reset, digest confirmation) first takes
a slot from the cap of the *normalised* mailbox (:func:`mailbox_key`), in the caller's write
transaction; without a slot the mail is silently not sent (the caller's answer stays the same,
so the cap reveals nothing either). Mail a person asked for after proving the mailbox is
theirs (digests they confirmed) is not capped here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection

from paperfeed.store import rate_limits as store

# Unsolicited mails per mailbox: bursts of 5, then one every 2.4 hours (10 a day sustained).
MAILS_PER_DAY = 10
MAIL_BURST = 5
_INTERVAL = 86400.0 / MAILS_PER_DAY
_EPOCH = datetime(1970, 1, 1)
# Google ignores dots in the local part of these domains (and googlemail.com is gmail.com).
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def mailbox_key(address: str) -> str:
    """The inbox an address reaches: lower case, without a ``+tag``; Gmail without dots.

    Only ``+`` is treated as a tag separator: ``-`` is part of many real names (``jean-luc``)."""
    local, _, domain = address.strip().lower().rpartition("@")
    if not local:
        return address.strip().lower()
    local = local.split("+", 1)[0] or local
    if domain in _DOTLESS:
        domain = _DOTLESS[domain]
        local = local.replace(".", "") or local
    return f"{local}@{domain}"


def take_mail_slot(conn: Connection, address: str, now: datetime) -> bool:
    """Take one slot from the mailbox's cap (in the caller's transaction): True means send."""
    key = "mailbox:" + hashlib.sha256(mailbox_key(address).encode("utf-8", "surrogatepass")).hexdigest()[:40]
    seconds = (now - _EPOCH).total_seconds()
    return store.take_token(conn, key, seconds, _INTERVAL, _INTERVAL * (MAIL_BURST - 1)) == 0.0
