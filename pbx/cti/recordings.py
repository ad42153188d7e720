"""Listening to call recordings over HTTP (L3).

=============================  =====================================================
path                           what
=============================  =====================================================
``GET /api/recordings``        the newest recorded calls (``?limit=1..500``), each with
                               its CDR ``id`` and ``url``
``GET /api/recordings/{id}``   the WAV of CDR ``id`` (stereo: caller left, agent right)
=============================  =====================================================

Who may listen: supervisors' and admins' sessions and API tokens with scope ``recordings``
(every recording); agents' sessions only when ``recording.agents_may_listen`` is true, and then
only the recordings of their own calls (another agent's is 404, as if it did not exist). No
credentials: 401; an agent when agents may not listen, or a token without the scope: 403. A
recording the retention deleted: 410. Sessions come as ``Authorization: Bearer`` or the session
cookie (the desk's ``<audio>`` element sends the cookie); these are reads, so no CSRF header.

The file is found by the CDR's id only: the request never names a path, and the stored relative
path is checked to stay inside ``data_dir/recordings`` before the file is opened
(`pbx.storage.recordings.RecordingFiles.resolve`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from pbx.config.schema import PbxConfig
from pbx.cti import rest
from pbx.cti.auth import CtiAuth, Session
from pbx.cti.rest import ApiError, endpoint, find_session, presented_token
from pbx.cti.tokens import ApiTokens
from pbx.storage.recordings import RecordingFiles, RecordingRef, SqlRecordingStore

log = structlog.get_logger("pbx.cti")
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pbx"'}


@dataclass(frozen=True, slots=True)
class Listener:
    """Who listens: `agent` None hears every recording, else only that agent's calls."""

    name: str
    agent: str | None


def session_listener(config: PbxConfig, session: Session) -> Listener | None:
    """Who a CTI session listens as, or None when it may not listen to recordings at all
    (an agent while ``recording.agents_may_listen`` is false)."""
    if session.sees_all:
        return Listener(session.extension, None)
    if not config.recording.agents_may_listen:
        return None
    return Listener(session.extension, session.extension)


def may_hear(listener: Listener, ref: RecordingRef) -> bool:
    """Whether `listener` may hear `ref` (an agent only their own calls)."""
    return listener.agent is None or ref.agent == listener.agent


def recording_url(ref: RecordingRef) -> str | None:
    """Where the recording is played, or None once the retention deleted it."""
    return None if ref.expired_at is not None else f"/api/recordings/{ref.cdr_id}"


class RecordingAccess:
    """Decides who may list and play recordings (see the module docstring)."""

    def __init__(self, config: PbxConfig, auth: CtiAuth, tokens: ApiTokens) -> None:
        self.config = config
        self.auth = auth
        self.tokens = tokens

    async def listener(self, request: Request) -> Listener:
        token, _ = presented_token(request)
        if token is None:
            raise ApiError(401, "send 'Authorization: Bearer TOKEN' (an API token with scope "
                                "'recordings', or a session)", headers=BEARER_CHALLENGE)
        api_token = self.tokens.match(token)
        if api_token is not None:
            if "recordings" not in api_token.scopes:
                raise ApiError(403, f"the API token {api_token.name!r} may not listen to "
                                    "recordings (it needs the scope 'recordings')")
            return Listener(f"token:{api_token.name}", None)
        session = await find_session(self.auth, token)
        if session is None:
            raise ApiError(401, "unknown API token, or the session has expired",
                           headers=BEARER_CHALLENGE)
        listener = session_listener(self.config, session)
        if listener is None:
            raise ApiError(403, "agents may not listen to recordings here (the admin can allow "
                                "their own calls with recording.agents_may_listen)")
        return listener


def recording_routes(config: PbxConfig, store: SqlRecordingStore, files: RecordingFiles,
                     access: RecordingAccess) -> list[BaseRoute]:
    """The two routes, behind `access`."""

    def describe(ref: RecordingRef) -> dict[str, object]:
        row = ref.describe()
        row["url"] = recording_url(ref)
        return row

    async def listing(request: Request) -> Response:
        listener = await access.listener(request)
        limit = rest.int_param(request, "limit", 50, 1, 500)
        rows = await asyncio.to_thread(store.recordings, limit, listener.agent)
        return JSONResponse({"recordings": [describe(r) for r in rows]})

    async def play(request: Request) -> Response:
        listener = await access.listener(request)
        raw = request.path_params["cdr_id"]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise ApiError(404, f"no recording {raw!r} (recordings are named by their CDR id)")
        ref = await asyncio.to_thread(store.recording, int(raw))
        if ref is None or not may_hear(listener, ref):
            raise ApiError(404, f"no recording for call record {raw}")
        if ref.expired_at is not None:
            raise ApiError(410, f"the recording of call record {raw} was deleted by the "
                                f"retention ({config.recording.retention_days} days)")
        path = files.resolve(ref.path)
        if path is None or not path.is_file():
            log.error("recording_missing", cdr=ref.cdr_id, path=ref.path)
            raise ApiError(404, f"the recording file of call record {raw} is missing")
        log.info("recording_played", cdr=ref.cdr_id, call_id=ref.call_id, by=listener.name)
        return FileResponse(path, media_type="audio/wav",
                            filename=f"recording-{ref.cdr_id}.wav",
                            content_disposition_type="inline",
                            headers={"Cache-Control": "private, no-store"})

    return [
        Route("/api/recordings", endpoint({"GET": listing}), methods=rest.ALL_METHODS),
        Route("/api/recordings/{cdr_id}", endpoint({"GET": play}), methods=rest.ALL_METHODS),
    ]
