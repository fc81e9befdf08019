"""Helpers for the community tests: a settable clock, cheap password hashing, users, and web
clients that carry the session cookie and CSRF token like a browser does."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from paperfeed.community import accounts
from paperfeed.community.core import Community, User
from paperfeed.community.passwords import PasswordParams
from paperfeed.community.ratelimit import Limits, Rate
from paperfeed.config import Settings
from paperfeed.store.db import Database
from paperfeed.web.app import create_app

# argon2id with the smallest cost: the tests check behaviour, not hashing strength.
FAST = PasswordParams(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def unlimited() -> Limits:
    """No rate limits (for tests about something else); the lockout policy stays."""
    # Field names chosen at run time: mypy cannot match them to parameters, so the dict says Any.
    off: dict[str, Any] = {f.name: None for f in fields(Limits) if isinstance(getattr(Limits(), f.name), Rate)}
    return Limits(**off)


class FakeClock:
    """Naive-UTC time that only moves when told to."""

    def __init__(self, start: datetime = datetime(2026, 4, 15, 12, 0, 0)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def community(settings: Settings, db: Database, clock: FakeClock | None = None, limits: Limits | None = None,
              **kw: Any) -> Community:  # fmt: skip
    return Community(settings=settings, db=db, clock=clock or FakeClock(), limits=limits or Limits(),
                     password_params=FAST, **kw)  # fmt: skip


def make_user(c: Community, name: str, role: str = "user", password: str = PASSWORD) -> User:
    return accounts.create_account(c, name, f"{name.lower()}@example.org", password, role=role)


@dataclass
class Web:
    """A TestClient on the real app, plus the app's Community (clock and limits are the test's)."""

    client: TestClient
    community: Community
    clock: FakeClock

    def token(self, path: str = "/signin") -> str:
        r = self.client.get(path)
        m = TOKEN_RE.search(r.text)
        assert m, f"no CSRF token on {path} ({r.status_code})"
        return m.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
        """A form POST the way a browser sends it: with the page's CSRF token."""
        return self.client.post(path, data={"csrf_token": self.token(), **(data or {})}, follow_redirects=False,
                                **kw)  # fmt: skip

    def sign_in(self, login: str, password: str = PASSWORD) -> Any:
        r = self.post("/signin", {"login": login, "password": password})
        assert r.status_code == 303, r.text
        return r


def web(settings: Settings, db: Database, clock: FakeClock | None = None, limits: Limits | None = None,
        **settings_overrides: Any) -> Web:  # fmt: skip
    if settings_overrides:
        settings = replace(settings, **settings_overrides)
    app = create_app(settings, db)
    clock = clock or FakeClock()
    c: Community = app.state.community
    c.clock = clock
    c.limits = limits or Limits()
    c.password_params = FAST
    return Web(TestClient(app, raise_server_exceptions=False), c, clock)


def second_browser(w: Web) -> Web:
    """Another browser (own cookies) on the same app."""
    return Web(TestClient(w.client.app, raise_server_exceptions=False), w.community, w.clock)
