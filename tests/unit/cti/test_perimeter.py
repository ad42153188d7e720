"""The HTTP perimeter as an ASGI middleware around a tiny echo app: whose X-Forwarded-For
counts, the body cap before reading, the security headers — and API token loading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from pbx.config import parse_config
from pbx.cti.perimeter import CONTENT_SECURITY_POLICY, HttpPerimeter
from pbx.cti.tokens import ApiTokenError, load_api_tokens

PROXY = "10.0.0.5"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"client": request.client.host if request.client else None,
                         "scheme": request.url.scheme, "size": len(body)})


def client(peer: str, trusted: tuple[str, ...] = ("10.0.0.0/24",), limit: int = 1024
           ) -> TestClient:
    app = Starlette(routes=[Route("/api/echo", echo, methods=["GET", "POST"]),
                            Route("/page", echo)],
                    middleware=[Middleware(HttpPerimeter, trusted_proxies=trusted,
                                           max_body_bytes=limit)])
    return TestClient(app, client=(peer, 40000))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.9", None, "198.51.100.9"),
        ("198.51.100.9", "192.0.2.1", "198.51.100.9"),  # not a proxy of ours: ignored
        ("127.0.0.1", "192.0.2.1", "127.0.0.1"),  # loopback is not trusted by default
        (PROXY, "192.0.2.1", "192.0.2.1"),
        (PROXY, "203.0.113.7, 192.0.2.1", "192.0.2.1"),  # the left part is the client's word
        (PROXY, "192.0.2.1, 10.0.0.9", "192.0.2.1"),  # past a second proxy of ours
        (PROXY, "10.0.0.8, 10.0.0.9", "10.0.0.8"),
        (PROXY, "[2001:db8::1]:4711", "2001:db8::1"),
        (PROXY, "192.0.2.1:4711", "192.0.2.1"),
        (PROXY, "::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_client_address_policy(peer: str, forwarded: str | None, expected: str) -> None:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    assert client(peer).get("/api/echo", headers=headers).json()["client"] == expected


def test_no_trusted_proxies_means_never() -> None:
    response = client(PROXY, trusted=()).get("/api/echo", headers={
        "X-Forwarded-For": "192.0.2.1", "X-Forwarded-Proto": "https"})
    assert response.json() == {"client": PROXY, "scheme": "http", "size": 0}


def test_forwarded_proto_only_from_a_trusted_proxy() -> None:
    https = {"X-Forwarded-Proto": "https"}
    assert client(PROXY).get("/api/echo", headers=https).json()["scheme"] == "https"
    assert client("198.51.100.9").get("/api/echo", headers=https).json()["scheme"] == "http"


@pytest.mark.parametrize("forwarded", ["not-an-address", "192.0.2.1, evil", ",".join(
    ["192.0.2.1"] * 17)])
def test_a_malformed_chain_from_a_proxy_is_a_400(forwarded: str) -> None:
    response = client(PROXY).get("/api/echo", headers={"X-Forwarded-For": forwarded})
    assert response.status_code == 400
    assert "X-Forwarded-For" in response.json()["error"]


def test_bodies_over_the_cap_are_refused_before_they_are_read() -> None:
    web = client("198.51.100.9", limit=1024)
    assert web.post("/api/echo", content=b"x" * 1024).json()["size"] == 1024
    response = web.post("/api/echo", content=b"x" * 1025)
    assert response.status_code == 413
    assert response.json() == {"error": "the body is larger than 1024 bytes", "status": 413}
    assert response.headers["x-frame-options"] == "DENY"

    def chunks():  # no Content-Length: read up to the cap, then refused
        for _ in range(4):
            yield b"y" * 400

    response = web.post("/api/echo", content=chunks())
    assert response.status_code == 413
    assert web.post("/api/echo", content=iter([b"z" * 300, b"z" * 300])).json()["size"] == 600
    bad = web.post("/api/echo", content=b"{}", headers={"Content-Length": "x"})
    assert bad.status_code == 400


def test_security_headers_on_every_answer() -> None:
    web = client("198.51.100.9")
    for path, status in (("/api/echo", 200), ("/page", 200), ("/nowhere", 404)):
        response = web.get(path)
        assert response.status_code == status
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert web.get("/api/echo").headers["cache-control"] == "no-store"
    assert "cache-control" not in web.get("/page").headers
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


# ================================================================== API tokens

BASE = """\
sip: {domain: hotline.example}
agents: [{extension: "1001", name: Anna, password: secret-1}]
http:
  api_tokens:
"""
TOKEN = "0123456789abcdef0123456789abcdef"


def test_tokens_load_from_a_digest_a_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "scrape.token").write_text(TOKEN + "-file\n")
    digest = hashlib.sha256(f"{TOKEN}-hash".encode()).hexdigest()
    config = parse_config(BASE + f"""\
    - {{name: hashed, token_sha256: {digest}, scopes: [cdrs], role: admin}}
    - {{name: file, token_file: {tmp_path / 'scrape.token'}}}
    - {{name: env, token_env: PBX_TEST_TOKEN, scopes: [registrations]}}
""")
    tokens = load_api_tokens(config, environ={"PBX_TEST_TOKEN": f" {TOKEN}-env "})
    assert len(tokens) == 3
    hashed = tokens.match(f"{TOKEN}-hash")
    assert hashed is not None and hashed.scopes == {"cdrs"} and hashed.principal.role == "admin"
    from_file = tokens.match(f"{TOKEN}-file")  # the file's newline is not part of it
    assert from_file is not None and from_file.scopes == {"metrics", "stats"}
    env = tokens.match(f"{TOKEN}-env")
    assert env is not None and env.name == "env"
    assert tokens.match(TOKEN) is None and tokens.match("") is None


@pytest.mark.parametrize(
    ("entry", "environ", "message"),
    [
        ("{name: a, token_file: /nonexistent/pbx.token}", {},
         "http.api_tokens[0].token_file: cannot read /nonexistent/pbx.token"),
        ("{name: a, token_env: PBX_TEST_TOKEN}", {}, "$PBX_TEST_TOKEN is empty or unset"),
        ("{name: a, token_env: PBX_TEST_TOKEN}", {"PBX_TEST_TOKEN": "short"},
         "holds a token of 5 characters"),
    ],
)
def test_token_errors_name_the_entry(entry: str, environ: dict[str, str], message: str) -> None:
    config = parse_config(BASE + f"    - {entry}\n")
    with pytest.raises(ApiTokenError) as caught:
        load_api_tokens(config, environ=environ)
    assert message in str(caught.value)


# ================================================================== start-time warnings


def test_the_start_warns_about_a_desk_port_without_a_proxy(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from pbx.app import _warn_about_exposure

    base = BASE.replace("http:\n  api_tokens:\n", "")
    for http, warned in (("", False), ("http: {host: 0.0.0.0}\n", True),
                         ("http: {host: 0.0.0.0, trusted_proxies: [10.0.0.1/32]}\n", False)):
        config = parse_config(base + http + f"pbx: {{data_dir: '{tmp_path}'}}\n")
        with capture_logs() as logs:
            _warn_about_exposure(config)
        assert any(e["event"] == "http_exposed" for e in logs) is warned, http
