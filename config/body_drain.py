"""Every request on a kept-alive connection gets an answer, also the one after a request whose body
the platform refused without reading it (the MCP endpoint's 413 over ``MCP_MAX_BODY_BYTES``, a 400,
403, 404 or 415 given before the body was needed).

gunicorn's gthread worker drains at most 64 KiB of a body the application left unread; when more is
left it closes the connection, after an answer that said ``Connection: keep-alive``, and the
client's next request on that connection gets no answer at all. The application cannot say
``Connection: close`` itself: gunicorn drops hop-by-hop headers from the application's answer. So:

- ``DrainUnreadBody`` (the WSGI application, ``config.wsgi``) reads and discards what is left of a
  declared body of up to ``REQUEST_BODY_DRAIN_BYTES`` before the answer goes out, and the connection
  stays usable;
- ``close_after_large_body`` (gunicorn's ``pre_request`` hook, ``config.gunicorn``) marks a request
  whose declared body is larger than that, or whose length is not declared (chunked), to be answered
  with ``Connection: close``: the server closes that connection on purpose, and says so.

Reading a refused body costs what receiving it costs anyway; a client that stops sending mid-body
holds its thread as it would on any endpoint that reads a body.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

DRAIN_MAX_BYTES = int(os.environ.get("REQUEST_BODY_DRAIN_BYTES", str(4 * 1024 * 1024)))
_CHUNK = 64 * 1024


def _declared_length(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def drain(environ: dict[str, Any]) -> None:
    """Discard the rest of the request body (never more than its declared length, so a server whose
    input stream is not bounded by ``Content-Length`` is not read into the next request)."""
    length = _declared_length(environ.get("CONTENT_LENGTH"))
    stream = environ.get("wsgi.input")
    if stream is None or not length or length > DRAIN_MAX_BYTES:
        return
    left = length
    while left > 0:
        chunk = stream.read(min(_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)


class DrainUnreadBody:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        drain(environ)
        return result


def close_after_large_body(req: Any) -> None:
    """gunicorn: answer with ``Connection: close`` a request whose body ``drain`` would not consume."""
    length, chunked = None, False
    for name, value in req.headers:
        if name == "CONTENT-LENGTH":
            length = _declared_length(value)
        elif name == "TRANSFER-ENCODING":
            chunked = True
    if chunked or (length is not None and length > DRAIN_MAX_BYTES):
        req.must_close = True
