"""The API documentation page ``/docs``: Swagger UI served from the local ``swagger-ui-bundle``.

FastAPI's built-in docs page loads Swagger UI from a CDN; this one loads the copy installed as
a Python package (mounted at ``/static/swagger``) and starts it from our own script file, so the
page works offline and under a ``script-src 'self'`` policy.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from paperfeed.web.respond import render_html

router = APIRouter(include_in_schema=False)

# Swagger UI sets inline styles from its scripts; everything else keeps the site-wide policy.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def swagger_dir() -> str:
    import swagger_ui_bundle

    return str(swagger_ui_bundle.swagger_ui_path)


@router.get("/docs")
async def api_docs(request: Request) -> Response:
    body = render_html(request, "docs.html", {"request": request})
    return Response(body, media_type="text/html; charset=utf-8", headers={"Content-Security-Policy": DOCS_CSP})
