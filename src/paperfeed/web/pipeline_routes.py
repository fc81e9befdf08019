"""The pipeline in a web process, and ``/api/v1/status`` for admins.

``register(app)`` starts the pipeline (``paperfeed/pipeline``) with the app and stops it with the
app, when ``settings.pipeline`` is on (``paperfeed serve`` default; ``PAPERFEED_PIPELINE=0`` or
``--no-pipeline`` leave it to cron). Every worker of every machine runs one; the leader lease lets
one of them do the jobs. The heartbeat reports this process's own index watermarks.

``GET /api/v1/status`` answers what ``paperfeed status`` prints (``pipeline/status.py``), with
this process's own indexes: 401 without a session or token, 403 for anybody but an admin (a token
needs the ``read`` scope, like every API read).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from paperfeed.community.core import require_role
from paperfeed.pipeline.runner import Pipeline
from paperfeed.pipeline.status import collect
from paperfeed.web.context import AppState, app_state
from paperfeed.web.respond import JSONResponse
from paperfeed.web.security import viewer

log = logging.getLogger(__name__)

router = APIRouter(tags=["paperfeed"])


@router.get(
    "/api/v1/status",
    responses={401: {"description": "Not signed in"}, 403: {"description": "Not an admin"}},
)
def status(request: Request) -> Response:
    """The pipeline's state: the leader, the last harvest, the embedding backlog, each search
    index's lag behind the database (this process's and every node's), the digest scheduler.
    Admins only."""
    require_role(viewer(request).user, "admin")
    state = app_state(request)
    follower = state.follower_state()
    body = collect(state.settings, state.db, state.index_watermarks(), follower.as_dict() if follower else None)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def register(app: FastAPI) -> None:
    state: AppState = app.state.pf
    running: dict[str, Any] = {}

    def start(st: AppState) -> None:
        if st.settings.pipeline and "pipeline" not in running:
            running["pipeline"] = Pipeline(st.settings, st.db, index_state=st.index_watermarks).start()

    def stop(_st: AppState) -> None:
        pipeline = running.pop("pipeline", None)
        if pipeline is not None:
            pipeline.stop()

    state.startup_hooks.append(start)
    state.shutdown_hooks.append(stop)
    app.include_router(router)
