"""Every redirect the web app sends, and the one rule for where it may point: ``safe_next``.

A redirect target often comes from the visitor (a ``next`` form field or query parameter, the
``Referer`` of a form post); an unchecked one turns the site into an open redirector
(``Location: //evil.example/`` is another host to a browser). ``safe_next`` accepts only a path
on this site; :func:`redirect` (and the helpers built on it) pass every target through it, so no
route can forget. A test fails if any other module in ``web/`` builds a ``RedirectResponse``.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

MAX_TARGET = 2000


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` when it is a same-site relative path, else ``default``.

    Refused: anything not starting with exactly one ``/`` (``//host``, ``https://``, ``javascript:``),
    backslashes anywhere (browsers read ``/\\host`` as ``//host``), control characters (browsers
    drop tabs and newlines, so ``/\\t/host`` becomes ``//host``) and overlong targets.
    """
    value = (value or "").strip()
    if (
        not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or len(value) > MAX_TARGET
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
    ):
        return default
    return value


def redirect(target: str, status: int = 303, default: str = "/") -> Response:
    """A redirect to ``target`` if it is safe, else to ``default`` (the only ``RedirectResponse``)."""
    return RedirectResponse(safe_next(target, safe_next(default)), status_code=status)


def referer_path(request: Request) -> str | None:
    """The page a form was posted from, when it is a safe path on this site (to go back to it)."""
    parts = urlsplit(request.headers.get("referer", ""))
    if parts.scheme not in ("http", "https") or parts.netloc != request.url.netloc:
        return None
    path = safe_next(parts.path + (f"?{parts.query}" if parts.query else ""), "")
    return path or None


def signin_redirect(request: Request, next_url: str | None = None) -> Response:
    """To the sign-in page, which sends the visitor on to ``next_url`` (or this page) afterwards."""
    target = safe_next(next_url, safe_next(request.url.path) if request.method == "GET" else "/")
    return redirect("/signin?" + urlencode({"next": target}))
