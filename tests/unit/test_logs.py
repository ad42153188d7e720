"""uvicorn's own loggers come out through structlog, in the PBX's format."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from pbx.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def test_uvicorn_loggers_write_json_lines_like_the_pbx(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # What uvicorn's default dictConfig would have installed: its own handler, no propagation.
    stray = logging.getLogger("uvicorn.error")
    stray.addHandler(logging.StreamHandler())
    stray.propagate = False
    configure_logging("info", "json")
    structlog.get_logger("pbx").warning("pbx_event", queue="support")
    logging.getLogger("uvicorn.error").warning("Invalid HTTP request received.")
    logging.getLogger("uvicorn.access").warning('%s - "%s %s" %d', "127.0.0.1:5", "GET", "/x",
                                                404)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == [
        "pbx_event", "Invalid HTTP request received.", '127.0.0.1:5 - "GET /x" 404']
    assert lines[1]["logger"] == "uvicorn.error" and lines[1]["level"] == "warning"
    assert lines[2]["logger"] == "uvicorn.access"
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_the_console_format_applies_to_uvicorn_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "console")
    logging.getLogger("uvicorn").error("Shutting down")
    err = capsys.readouterr().err
    assert "Shutting down" in err and "uvicorn" in err and not err.lstrip().startswith("{")
