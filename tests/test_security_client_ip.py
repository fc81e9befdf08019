"""Issue 10 item 9: the client address behind per-IP limits. ``paperfeed serve`` used to believe
``X-Forwarded-For`` from 127.0.0.1 (uvicorn's default), so anyone on the host - or anything that
relays requests from it - could rotate the header and escape every per-IP limit. By default no
proxy is trusted; ``PAPERFEED_FORWARDED_ALLOW_IPS`` names the ones that are. Tested against the real
CLI server on loopback, with the per-IP limit on digest sign-ups (10 at once per address)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from paperfeed.cli import app as cli_app
from paperfeed.config import Settings

from .servers import ServeProcess

pytestmark = pytest.mark.slow

TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
BURST = 10  # web/digest_routes.SUBSCRIBE_IP_RATE


def _subscribe(c: httpx.Client, n: int, headers: dict[str, str]) -> int:
    token = TOKEN_RE.search(c.get("/digest/subscribe").text)
    assert token, "no CSRF token on /digest/subscribe"
    r = c.post("/digest/subscribe", headers=headers, data={
        "csrf_token": token.group(1), "email": f"reader{n}@example.org", "frequency": "daily",
        "timezone": "UTC", "send_hour": "8", "q": "attention",
    })  # fmt: skip
    assert r.status_code in (200, 429), (r.status_code, r.text[:300])
    return r.status_code


def _statuses(url: str, forwarded: list[str], start: int = 0) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as c:
        return [_subscribe(c, start + i, {"X-Forwarded-For": ip}) for i, ip in enumerate(forwarded)]


def _secure_cookie(url: str, proto: str) -> bool:
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.get("/signin", headers={"X-Forwarded-Proto": proto})
        return "; secure" in r.headers["set-cookie"].lower()


def test_by_default_forwarded_headers_from_loopback_are_not_believed(settings: Settings, tmp_path: Path) -> None:
    env = {"PAPERFEED_HOME": str(settings.home)}
    with ServeProcess(env, tmp_path / "serve.log"):
        pass  # migrated and started once: the next start is quick
    with ServeProcess(env, tmp_path / "serve.log") as server:
        rotating = [f"203.0.113.{i}" for i in range(1, BURST + 6)]
        statuses = _statuses(server.url, rotating)
        assert statuses == [200] * BURST + [429] * 5  # one bucket: the socket's address
        assert not _secure_cookie(server.url, "https")  # X-Forwarded-Proto is not believed either
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log, log


def test_a_trusted_proxy_s_forwarded_address_is_used(settings: Settings, tmp_path: Path) -> None:
    env = {"PAPERFEED_HOME": str(settings.home), "PAPERFEED_FORWARDED_ALLOW_IPS": "127.0.0.1, ::1"}
    with ServeProcess(env, tmp_path / "serve.log") as server:
        rotating = [f"203.0.113.{i}" for i in range(1, BURST + 6)]
        assert _statuses(server.url, rotating) == [200] * (BURST + 5)  # each visitor has its own bucket
        # One visitor behind the proxy is limited like any other address; a spoofed first hop in
        # the header does not help (the proxy appends the real address; the right-most one counts).
        same = [f"10.9.8.{i}, 198.51.100.7" for i in range(BURST + 3)]
        assert _statuses(server.url, same, start=100) == [200] * BURST + [429] * 3
        assert _secure_cookie(server.url, "https")
        assert not _secure_cookie(server.url, "http")


@pytest.mark.parametrize("value", ["not-an-ip", "10.0.0.0/33", "127.0.0.1,,", "localhost"])
def test_a_malformed_setting_is_refused_with_a_message(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("PAPERFEED_FORWARDED_ALLOW_IPS", value)
    with pytest.raises(ValueError, match="PAPERFEED_FORWARDED_ALLOW_IPS"):
        Settings.from_env()


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("", ()), ("  ", ()), ("127.0.0.1", ("127.0.0.1",)), ("10.0.0.0/8, ::1", ("10.0.0.0/8", "::1")), ("*", ("*",))],
)
def test_the_setting_parses(monkeypatch: pytest.MonkeyPatch, value: str, parsed: tuple[str, ...]) -> None:
    monkeypatch.setenv("PAPERFEED_FORWARDED_ALLOW_IPS", value)
    assert Settings.from_env().forwarded_allow_ips == parsed


def test_serve_refuses_a_malformed_setting_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                                settings: Settings) -> None:  # fmt: skip
    monkeypatch.setenv("PAPERFEED_HOME", str(settings.home))
    monkeypatch.setenv("PAPERFEED_FORWARDED_ALLOW_IPS", "proxy.internal")
    res = CliRunner().invoke(cli_app, ["serve", "--port", "1"])
    assert res.exit_code == 2
    assert "PAPERFEED_FORWARDED_ALLOW_IPS: 'proxy.internal' is not an IP address" in " ".join(res.output.split())
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output  # a clean exit, not a crash
