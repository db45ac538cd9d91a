"""Logging filters referenced from ``LOGGING`` in config/settings.py."""

from __future__ import annotations

import logging


class ClientErrorFilter(logging.Filter):
    """A request Django answered with a 4xx (bad Host header, too many fields, an unparsable multipart
    body...) is the client's error: log it as one WARNING line, without the traceback Django attaches
    (at ERROR for the ``django.security.*`` loggers). Records of 5xx responses pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info = None
            record.exc_text = None
        return True
