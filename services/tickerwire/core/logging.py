"""structlog configuration: JSON lines for services, a readable console for the CLI.

Context such as ``doc_id``, ``topic``, ``partition`` and ``offset`` is bound through
``structlog.contextvars`` and appears on every line logged inside it.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    *,
    fmt: Literal["json", "console", "auto"] = "auto",
    level: str = "info",
    service: bool = True,
) -> None:
    """Configure structlog and the stdlib root logger once per process.

    ``auto`` means JSON for services (``service=True``) and console for interactive commands.
    """
    use_json = fmt == "json" or (fmt == "auto" and service)
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: structlog.typing.Processor
    if use_json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    levelno = _LEVELS.get(level, logging.INFO)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (aiokafka, faust, uvicorn) log through the stdlib; route them through structlog.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(levelno, logging.INFO) if levelno > logging.DEBUG else levelno)
    for noisy in ("aiokafka", "kafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(levelno, logging.WARNING))
    # trafilatura reports pages too small for main-text extraction as errors; the cleaner falls
    # back to its plain-text conversion for those, so they are not errors for us.
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    """A structlog logger; bind context with ``structlog.contextvars.bound_contextvars``."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger
