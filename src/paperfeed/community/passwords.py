"""Password hashing: argon2id through argon2-cffi, with the cost as :class:`PasswordParams`.

One :class:`Passwords` per :class:`~paperfeed.community.core.Community` (tests and benchmarks pass
cheap parameters). It takes only its parameters, so the community context can build it without
importing the account code that uses it. Verifying against an unknown user spends the time of a
real check, so response times do not tell which usernames exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


@dataclass(frozen=True)
class PasswordParams:
    """argon2id cost. The defaults are OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): on a
    small 2-core server a sign-in stays well under a second even while other work runs, and the
    per-address sign-in limit caps how much hashing a stranger can ask for. Raising them later is
    safe: hashes are upgraded on each user's next sign-in."""

    time_cost: int = 2
    memory_cost: int = 19456  # KiB
    parallelism: int = 1


class Passwords:
    def __init__(self, params: PasswordParams | None = None) -> None:
        p = params or PasswordParams()
        self._hasher = PasswordHasher(time_cost=p.time_cost, memory_cost=p.memory_cost, parallelism=p.parallelism)
        self._dummy: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            # Unknown user or no password set: spend the same time as a real check, so response
            # times do not tell which usernames exist.
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_hex(16))
            password_hash = self._dummy
            password = password + "\x00never"
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return False
