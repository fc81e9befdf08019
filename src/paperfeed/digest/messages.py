"""The outgoing mail for one digest ledger row, and its Message-ID.

A digest carries one-click unsubscribe headers (RFC 8058: ``List-Unsubscribe`` with both an
https and a mailto target, ``List-Unsubscribe-Post``), ``List-Id``, ``Precedence: bulk`` and
``Auto-Submitted``; a confirmation mail carries only the last. The Message-ID is deterministic per
(subscription, period), so a resend after a crash is recognisably the same message (the sender's
"possibly twice, never never" rule in ``send``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paperfeed.config import Settings
from paperfeed.digest.compose import Composer, Section
from paperfeed.digest.periods import parse_key
from paperfeed.digest.subscriptions import Prefs, Tokens, confirm_url, links_for, mailbox_of, new_nonce
from paperfeed.mail import mailer
from paperfeed.store import subscription_store
from paperfeed.store.db import Database


def message_id_for(settings: Settings, sub_id: int, key: str) -> str:
    """Deterministic per (subscription, period): a resend carries the same Message-ID."""
    tag = hmac.new(settings.secret().encode(), f"{sub_id}:{key}".encode(), hashlib.sha256).hexdigest()[:12]
    domain = mailbox_of(settings.mail_from).rpartition("@")[2] or "localhost"
    return f"<{key.replace(':', '.')}.s{sub_id}.{tag}@{domain}>"


class MessageBuilder:
    """Builds the mails of one sender run (keeps the signing keys and the List-Id)."""

    def __init__(self, settings: Settings, db: Database, composer: Composer, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.db = db
        self.composer = composer
        self.clock = clock
        self.tokens = Tokens.from_settings(settings)
        domain = mailbox_of(settings.mail_from).rpartition("@")[2] or "localhost"
        self.list_id = f"paperfeed digests <digest.{domain}>"

    def build(self, row: dict[str, Any], message_id: str, sections: list[Section] | None) -> mailer.OutgoingMessage:
        """The mail for one ledger row: a digest of ``sections``, or (``sections`` None) a confirmation."""
        sub_id = int(row["subscription_id"])
        manage_nonce = row["manage_nonce"]
        if not manage_nonce:  # rows from before manage links existed
            manage_nonce = row["manage_nonce"] = new_nonce()
            with self.db.write() as conn:
                subscription_store.update_subscription(conn, sub_id, manage_nonce=manage_nonce)
        links = links_for(self.settings, self.tokens, sub_id, manage_nonce)
        if sections is None:  # a confirmation mail
            payload = row["payload"]
            prefs = Prefs.from_payload(payload["prefs"])
            token = self.tokens.confirm(sub_id, payload["nonce"], prefs)
            change = payload.get("kind") == "change"
            r = self.composer.render_confirm(
                email=row["email"],
                prefs=prefs,
                confirm_url=confirm_url(self.settings, token),
                change=change,
                manage_url=links.manage_url if change else None,
            )
            headers = {"Auto-Submitted": "auto-generated", "X-Paperfeed-Delivery": row["period"]}
        else:
            period = parse_key(row["period"], bool(row["weekdays_only"]))
            r = self.composer.render_digest(
                email=row["email"], prefs=Prefs.from_row(row), period=period, sections=sections, links=links
            )
            headers = {
                "List-Unsubscribe": f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self.list_id,
                "Precedence": "bulk",
                "Auto-Submitted": "auto-generated",
                "X-Paperfeed-Delivery": row["period"],
            }
        return mailer.build_message(
            sender=self.settings.mail_from,
            to=row["email"],
            subject=r.subject,
            text=r.text,
            html=r.html,
            message_id=message_id,
            date=self.clock(),
            headers=headers,
        )
