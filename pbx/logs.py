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
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries that log with the standard library (uvicorn's "uvicorn", "uvicorn.error" and
    # "uvicorn.access", asyncio …) come out in the same format, one event per line, with the
    # logger's name; `pbx.app` starts uvicorn without a logging config of its own so that its
    # loggers reach this handler.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    ))
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=[handler], force=True)
    for name in STDLIB_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()  # what an earlier dictConfig (uvicorn's own) put there
        logger.propagate = True


STDLIB_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
