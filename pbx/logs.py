"""structlog setup: JSON lines when stderr is not a TTY, a readable console otherwise — L3.

Every SIP-related event is bound with `call_id` by its caller; agents and queues with `agent` and
`queue`. The level comes from the config (`logging.level`) and `--log-level` overrides it.
"""

from __future__ import annotations

import logging
import sys

import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure structlog for the process. `fmt` is auto, json or console."""
    numeric = LEVELS.get(level.lower(), logging.INFO)
    use_console = sys.stderr.isatty() if fmt == "auto" else fmt == "console"
    renderer: structlog.typing.Processor
    if use_console:
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=sys.stderr)
