"""The errors community actions raise: each carries the HTTP status the web layer answers with
and a message written for the person who made the request (the CLI prints the same message).

A leaf module (no paperfeed imports) so that every community module, the rate limiter included,
can raise them without importing the :class:`~paperfeed.community.core.Community` context.
"""

from __future__ import annotations


class CommunityError(ValueError):
    """A request that cannot be done; ``status`` is the HTTP answer, the message is for people."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class NotSignedIn(CommunityError):
    status = 401


class Forbidden(CommunityError):
    status = 403


class NotFound(CommunityError):
    status = 404


class Conflict(CommunityError):
    status = 409


class RateLimited(CommunityError):
    """Too many requests; ``retry_after`` seconds until the next one is allowed."""

    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after + 0.999))
