"""REST plumbing of the CTI API (L3): errors as JSON, bodies, sessions, CSRF, method dispatch.

Every answer the CTI gives to a bad request is a 4xx JSON object ``{"error": "what is wrong",
"status": N, ...details}``; never a 500 and never an HTML page. With ``Accept-Language`` it
adds ``"message"`` in that language (`pbx.cti.messages`); ``error`` stays English. `endpoint`
builds one Starlette endpoint from a method -> handler table (an unsupported method is a JSON
405 with ``Allow``) and turns the exceptions handlers raise into those answers: `ApiError`,
`ControlRefused`, `FormRejected`, `LoginRefused`, and `StorageError` / unexpected failures of the
PBX behind (503).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from pbx.cti import messages
from pbx.cti.auth import CSRF_COOKIE, SESSION_COOKIE, CtiAuth, LoginRefused, Session
from pbx.cti.control import ControlRefused
from pbx.cti.forms import FormRejected
from pbx.storage.errors import StorageError

log = structlog.get_logger("pbx.cti")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

Handler = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """A request the API refuses: `status` (4xx), a message, optional response headers (a
    401's ``WWW-Authenticate``) and optional details for the body."""

    def __init__(self, status: int, message: str, *,
                 headers: Mapping[str, str] | None = None, **details: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.details = details


def error_response(
    status: int, message: str, details: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None, language: str | None = None,
) -> JSONResponse:
    """The JSON error answer. With `language` (the request's ``Accept-Language``, see
    `pbx.cti.messages`) it adds ``message`` in that language (English where the catalogue has
    no translation) and a form's per-field problems as ``field_messages``; ``error`` stays
    English for scripts."""
    body: dict[str, object] = {"error": message, "status": status}
    body.update(details or {})
    if language is not None:
        body["message"] = messages.localized(message, language)
        fields = body.get("fields")
        if isinstance(fields, dict):
            body["field_messages"] = {name: messages.localized(str(text), language)
                                      for name, text in fields.items()}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def endpoint(handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    """One endpoint serving `handlers` by HTTP method (HEAD falls back to GET)."""
    allowed = ", ".join(sorted(handlers))

    async def serve(request: Request) -> Response:
        method = request.method
        language = messages.preferred_language(request.headers.get("accept-language"))
        handler = handlers.get(method) or (handlers.get("GET") if method == "HEAD" else None)
        if handler is None:
            message = f"{method} is not allowed here (allowed: {allowed})"
            return error_response(405, message, headers={"Allow": allowed}, language=language)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.details, exc.headers, language)
        except (ControlRefused, LoginRefused) as exc:
            return error_response(exc.status, exc.message, language=language)
        except FormRejected as exc:
            return error_response(exc.status, exc.message, {"fields": exc.fields} if exc.fields
                                  else None, language=language)
        except StorageError as exc:
            log.error("cti_storage_failed", path=request.url.path, error=str(exc))
            return error_response(503, "the database is not available; try again",
                                  language=language)
        except Exception as exc:  # the PBX behind failed: not the client's fault, not a crash
            log.exception("cti_request_failed", path=request.url.path)
            return error_response(503, f"the PBX could not carry this out ({type(exc).__name__})",
                                  language=language)

    return serve


async def json_body(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object. Refuses other media types (415: a cross-site HTML form cannot
    send JSON, which also guards the login against CSRF) and malformed bodies (400). Oversized
    ones never get here: the perimeter answers them 413 before they are read
    (`pbx.cti.perimeter`)."""
    raw = await request.body()
    if not raw and optional:
        return {}
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(415, "send the body as JSON (Content-Type: application/json)")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def text_field(
    body: Mapping[str, Any], key: str, *, required: bool = True, max_length: int = 256,
    default: str = "",
) -> str:
    """``body[key]`` as a string (400 when missing, not a string, or too long)."""
    if key not in body or body[key] is None:
        if required:
            raise ApiError(400, f"'{key}' is required")
        return default
    value = body[key]
    if not isinstance(value, str):
        raise ApiError(400, f"'{key}' must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise ApiError(400, f"'{key}' is longer than {max_length} characters")
    return value


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiError(400, f"'{name}' must be an integer {low}..{high}")
    return int(raw)


def presented_token(connection: HTTPConnection) -> tuple[str | None, bool]:
    """(token, came from the cookie). ``Authorization: Bearer`` wins over the cookie."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "the Authorization header must be 'Bearer TOKEN'")
        return token.strip(), False
    cookie = connection.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else (None, False)


async def find_session(auth: CtiAuth, token: str) -> Session | None:
    return auth.cached(token) or await asyncio.to_thread(auth.load, token)


async def require_session(request: Request, auth: CtiAuth, csrf_header: str) -> Session:
    """The request's session; 401 without a valid one. A cookie-authenticated request that
    changes state must carry the session's CSRF token in `csrf_header` (403 otherwise)."""
    token, via_cookie = presented_token(request)
    if token is None:
        raise ApiError(401, "log in first (POST /api/cti/login), then send "
                            "'Authorization: Bearer TOKEN' or the session cookie")
    session = await find_session(auth, token)
    if session is None:
        raise ApiError(401, "the session has expired or was logged out; log in again")
    if via_cookie and request.method not in SAFE_METHODS:
        if not session.check_csrf(request.headers.get(csrf_header)):
            raise ApiError(403, f"missing or wrong {csrf_header} header (needed with the "
                                "session cookie for every change)")
    return session


def require_supervisor(session: Session) -> None:
    if not session.sees_all:
        raise ApiError(403, "only supervisors and admins may do this")


def cookies_secure(request: Request, setting: bool | str) -> bool:
    """Whether cookies get ``Secure``: `setting` (``cti.cookie_secure``) when it is a bool;
    for ``auto``, whether the request came over HTTPS (directly, or per a trusted proxy's
    ``X-Forwarded-Proto`` — `pbx.cti.perimeter` has set the scheme)."""
    if isinstance(setting, bool):
        return setting
    return request.url.scheme == "https"


def set_session_cookies(
    response: Response, token: str, csrf: str, max_age: int, secure: bool
) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", secure=secure,
                        httponly=True, samesite="strict")
    # Readable by the page's script, which echoes it in the CSRF header (double submit).
    response.set_cookie(CSRF_COOKIE, csrf, max_age=max_age, path="/", secure=secure,
                        httponly=False, samesite="strict")


def clear_session_cookies(response: Response, secure: bool) -> None:
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", secure=secure, samesite="strict")
