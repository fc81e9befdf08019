"""Settings: read once from the environment (``PAPERFEED_*``) and passed around explicitly.

Nothing in the package reads ``os.environ`` except :func:`Settings.from_env`, so tests and
embedders can build a ``Settings`` by hand.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


def _default_home() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "paperfeed"


def _proxies(value: str | None) -> tuple[str, ...]:
    """``PAPERFEED_FORWARDED_ALLOW_IPS``: comma-separated addresses or networks, or ``*``."""
    items = [item.strip() for item in (value or "").split(",")]
    if all(not item for item in items):
        return ()
    for item in items:
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False) if "/" in item else ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(
                f"PAPERFEED_FORWARDED_ALLOW_IPS: {item!r} is not an IP address or network "
                "(give e.g. 127.0.0.1 or 10.0.0.0/8, comma-separated, or * for every peer)"
            ) from None
    return tuple(items)


def _seconds(name: str, value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:
        raise ValueError(f"{name}: {value!r} is not a number of seconds between 0 and 3600")
    return seconds


def _sets(value: str | None) -> tuple[str, ...]:
    """``PAPERFEED_HARVEST_SETS``: OAI-PMH set names, comma- or space-separated; unset means ``cs``,
    empty (or ``none``) harvests nothing."""
    if value is None:
        return ("cs",)
    names = tuple(dict.fromkeys(v for v in value.replace(",", " ").split() if v))
    return () if names in ((), ("none",)) else names


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)
    database_url: str | None = None  # None -> SQLite file in ``home``
    base_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    smtp_url: str | None = None  # None -> mail is written to ``home/outbox`` (demo default)
    mail_from: str = "paperfeed <digest@localhost>"
    oai_url: str = "https://oaipmh.arxiv.org/oai"
    harvest_delay: float = 3.0
    ann_threshold: int = 20_000  # above this many vectors, use the HNSW index
    # `serve` runs the pipeline (paperfeed/pipeline: leader election, harvest, embedding, digests).
    # ``from_env`` turns it on (PAPERFEED_PIPELINE, default 1); a Settings built by hand (tests,
    # embedders) starts no background jobs unless asked to.
    pipeline: bool = False
    harvest_sets: tuple[str, ...] = ("cs",)  # OAI-PMH sets the pipeline harvests; () harvests nothing
    harvest_start_days: int = 7  # a set never harvested before starts this many days back
    leader_ttl: float = 30.0  # seconds a pipeline leader's lease lasts without renewal
    index_follow: bool = True  # each `serve` process keeps its search indexes current (search/follower.py)
    index_poll: float = 1.0  # seconds between its looks at the database
    submission_window_days: int = 14
    submissions_per_day: int = 10
    query_timeout_ms: int = 2_000
    encoder: str = "auto"  # sentence encoder variant: int8 | fp32 | auto (by CPU flags)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default.
    forwarded_allow_ips: tuple[str, ...] = ()
    header_timeout: float = 10.0  # `serve`: a request's headers must arrive within this (web/server.py)
    keep_alive_timeout: float = 5.0  # `serve`: an idle kept-alive connection is closed after this

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        home = Path(env["PAPERFEED_HOME"]).expanduser() if env.get("PAPERFEED_HOME") else _default_home()
        s = cls(
            home=home,
            database_url=env.get("PAPERFEED_DATABASE_URL") or None,
            base_url=env.get("PAPERFEED_BASE_URL", cls.base_url).rstrip("/"),
            secret_key=env.get("PAPERFEED_SECRET_KEY", ""),
            smtp_url=env.get("PAPERFEED_SMTP_URL") or None,
            mail_from=env.get("PAPERFEED_MAIL_FROM", cls.mail_from),
            oai_url=env.get("PAPERFEED_OAI_URL", cls.oai_url),
            harvest_delay=float(env.get("PAPERFEED_HARVEST_DELAY", cls.harvest_delay)),
            ann_threshold=int(env.get("PAPERFEED_ANN_THRESHOLD", cls.ann_threshold)),
            # PAPERFEED_SCHEDULER is the older name (when the digest scheduler was all there was).
            pipeline=_bool(env.get("PAPERFEED_PIPELINE"), _bool(env.get("PAPERFEED_SCHEDULER"), True)),
            harvest_sets=_sets(env.get("PAPERFEED_HARVEST_SETS")),
            harvest_start_days=int(env.get("PAPERFEED_HARVEST_START_DAYS", 7)),
            leader_ttl=_seconds("PAPERFEED_LEADER_TTL", env.get("PAPERFEED_LEADER_TTL"), 30.0),
            index_follow=_bool(env.get("PAPERFEED_INDEX_FOLLOW"), True),
            index_poll=_seconds("PAPERFEED_INDEX_POLL", env.get("PAPERFEED_INDEX_POLL"), 1.0),
            submission_window_days=int(env.get("PAPERFEED_SUBMISSION_WINDOW_DAYS", 14)),
            submissions_per_day=int(env.get("PAPERFEED_SUBMISSIONS_PER_DAY", 10)),
            encoder=(env.get("PAPERFEED_ENCODER") or "auto").strip().lower(),
            forwarded_allow_ips=_proxies(env.get("PAPERFEED_FORWARDED_ALLOW_IPS")),
            header_timeout=_seconds("PAPERFEED_HEADER_TIMEOUT", env.get("PAPERFEED_HEADER_TIMEOUT"), 10.0),
            keep_alive_timeout=_seconds("PAPERFEED_KEEP_ALIVE_TIMEOUT", env.get("PAPERFEED_KEEP_ALIVE_TIMEOUT"), 5.0),
        )
        return replace(s, **overrides) if overrides else s

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'paperfeed.db'}"

    @property
    def index_dir(self) -> Path:
        """Side indexes (lexical, vector) live next to the database."""
        return self.home / "index"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    def secret(self) -> str:
        """The signing key; generated once and kept in ``home/secret_key`` when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.home / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(key)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        return key
