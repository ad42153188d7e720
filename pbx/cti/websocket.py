"""The desktops' WebSocket ``/api/cti/ws`` (L3): authenticated, one-way JSON events.

Authentication, in this order: ``?token=TOKEN`` in the URL; the session cookie (only when the
``Origin`` header, if any, names this host — a cross-site page must not ride on the cookie);
or, within `AUTH_TIMEOUT_S`, a first message ``{"type": "auth", "token": "TOKEN"}``. A failure
is answered with ``{"type": "error", "status": 401, "error": …}`` and close code 4401; so is a
session that expires or logs out while connected.

Then the server sends a ``snapshot`` (the session, the agents and calls it may see, each call
with its pop), a ``wallboard`` every `WALLBOARD_PERIOD_S` to supervisors and admins, and the
desk's events as they happen (`pbx.cti.desk`): ``agent_state``, ``queued``, ``offered`` and
``dialing`` (with ``pop``), ``offer_cancelled``, ``answered``, ``held``, ``resumed``,
``transferred``, ``ended``, ``wrapup_started``, ``wrapup_ended``, ``disposition``,
``form_saved``. The client may send ``{"type": "ping"}`` (answered with ``pong``); anything
else is ignored. A client too slow to read its events is closed with code 4408.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from pbx.cti import messages
from pbx.cti.auth import SESSION_COOKIE, CtiAuth, Session
from pbx.cti.desk import CtiDesk, DeskClient
from pbx.cti.rest import find_session

AUTH_TIMEOUT_S = 10.0
WALLBOARD_PERIOD_S = 2.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408


async def desk_socket(websocket: WebSocket, desk: CtiDesk, auth: CtiAuth) -> None:
    await websocket.accept()
    session = await _authenticate(websocket, auth)
    if session is None:
        return
    client = desk.connect(session, asyncio.get_running_loop())
    try:
        await websocket.send_json(desk.snapshot_for(session))
        pending = desk.previews.get(session.extension)
        if pending is not None:
            await websocket.send_json(pending)
        if session.sees_all:
            await websocket.send_json(desk.wallboard())
        await _pump(websocket, client, desk, auth)
    except WebSocketDisconnect:
        pass
    finally:
        desk.disconnect(client)


async def _authenticate(websocket: WebSocket, auth: CtiAuth) -> Session | None:
    token = websocket.query_params.get("token")
    if token is None and websocket.cookies.get(SESSION_COOKIE):
        if not _same_origin(websocket):
            await _refuse(websocket, "cross-site WebSocket with the session cookie refused")
            return None
        token = websocket.cookies[SESSION_COOKIE]
    if token is None:
        token = await _token_from_first_message(websocket)
        if token is None:
            await _refuse(websocket, 'send {"type": "auth", "token": TOKEN} first')
            return None
    session = await find_session(auth, token)
    if session is None:
        await _refuse(websocket, "unknown or expired session; log in again")
    return session


async def _token_from_first_message(websocket: WebSocket) -> str | None:
    try:
        text = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
        message = json.loads(text)
    except (TimeoutError, ValueError, KeyError, RuntimeError, WebSocketDisconnect):
        return None
    if isinstance(message, dict) and message.get("type") == "auth":
        token = message.get("token")
        if isinstance(token, str) and token:
            return token
    return None


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: a cookie it sends is its own
    return urlsplit(origin).netloc.lower() == websocket.headers.get("host", "").lower()


async def _refuse(websocket: WebSocket, reason: str) -> None:
    if websocket.application_state is WebSocketState.CONNECTED:
        try:
            event: dict[str, object] = {"type": "error", "status": 401, "error": reason}
            language = messages.preferred_language(websocket.headers.get("accept-language"))
            if language is not None:  # the browser's languages (the handshake's header)
                event["message"] = messages.localized(reason, language)
            await websocket.send_json(event)
            await websocket.close(CLOSE_UNAUTHORIZED, reason[:120])
        except (WebSocketDisconnect, RuntimeError):
            pass


async def _pump(websocket: WebSocket, client: DeskClient, desk: CtiDesk, auth: CtiAuth) -> None:
    receiver = asyncio.create_task(_receive(websocket, client))
    try:
        while True:
            getter = asyncio.create_task(client.queue.get())
            done, _ = await asyncio.wait(
                {getter, receiver}, timeout=WALLBOARD_PERIOD_S, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
            if receiver in done:
                return
            if getter in done:
                message = getter.result()
                if message is None:
                    await _close_client(websocket, client, auth)
                    return
                await websocket.send_json(message)
                continue
            if not auth.still_valid(client.session):
                await _refuse(websocket, "the session has expired or was logged out")
                return
            if client.session.sees_all:
                await websocket.send_json(desk.wallboard())
    finally:
        receiver.cancel()


async def _close_client(websocket: WebSocket, client: DeskClient, auth: CtiAuth) -> None:
    if client.overflowed:
        await websocket.close(CLOSE_TOO_SLOW, "too slow to read events; reconnect")
    elif not auth.still_valid(client.session):
        await _refuse(websocket, "the session was logged out")
    else:
        await websocket.close()


async def _receive(websocket: WebSocket, client: DeskClient) -> None:
    # Runs until the client goes away; answers pings through the client's own queue.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text and '"ping"' in text:
            try:
                if json.loads(text).get("type") == "ping":
                    client.push({"type": "pong"})
            except (ValueError, AttributeError):
                pass
