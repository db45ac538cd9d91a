"""MCP wire handling with the ``mcp`` package's types: envelopes, eras, versions, results.

Two eras share one endpoint. The current revision (2026-07-28) is stateless: every request carries
``_meta`` with its protocol version and the ``MCP-Protocol-Version``/``Mcp-Method``/``Mcp-Name``
headers, which must agree with the body. The handshake era (2025-11-25, 2025-06-18; 2025-03-26
tolerated) starts with ``initialize``; we issue no session ids (sessions are optional there).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import mcp_types as t
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, InboundLadderRejection, classify_inbound_request
from mcp_types import jsonrpc
from mcp_types import methods as m
from pydantic import ValidationError

MODERN_VERSIONS = ("2026-07-28",)
HANDSHAKE_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
SUPPORTED_VERSIONS = MODERN_VERSIONS + HANDSHAKE_VERSIONS
DEFAULT_HANDSHAKE_VERSION = "2025-03-26"  # what a handshake-era request without the header means
LATEST_HANDSHAKE_VERSION = "2025-11-25"
SERVER_INFO_META_KEY = "io.modelcontextprotocol/serverInfo"

MODERN_METHODS = frozenset({"server/discover", "tools/list", "tools/call"})
HANDSHAKE_METHODS = frozenset({"initialize", "ping", "tools/list", "tools/call"})


# A JSON escape that may decode to NUL or to half of a surrogate pair: only bodies containing one are
# walked (PostgreSQL text cannot hold NUL; a lone surrogate cannot be encoded back to UTF-8).
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")


def _has_bad_string(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _BAD_CHARS.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _request_id(decoded: dict[str, Any]) -> str | int | None:
    """The id to echo in an error: a string or an integer (JSON-RPC), never a boolean."""
    value = decoded.get("id")
    return value if type(value) in (str, int) else None


class ProtocolError(Exception):
    def __init__(self, code: int, message: str, data: Any = None, request_id: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data, self.request_id = code, message, data, request_id

    @property
    def http_status(self) -> int:
        return ERROR_CODE_HTTP_STATUS.get(self.code, 200)

    def body(self) -> dict[str, Any]:
        error = t.ErrorData(code=self.code, message=self.message, data=self.data)
        return jsonrpc.JSONRPCError(jsonrpc="2.0", id=self.request_id, error=error).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        ) | ({"id": None} if self.request_id is None else {})


class Answered(Exception):
    """An HTTP answer decided before dispatch (a transport refusal, a notification's 202, routing's
    refusal of a deactivated or deleted tenant): the endpoint sends ``response`` as it is. The one
    exception on the ``/mcp`` path that carries a response."""

    def __init__(self, response: HttpResponse) -> None:
        self.response = response


def refused(message: str, status: int, **headers: str) -> Answered:
    """A request refused before it is read as JSON-RPC (method, size, content type, origin)."""
    return Answered(json_response(ProtocolError(jsonrpc.INVALID_REQUEST, message).body(), status, **headers))


# Built once: ``JsonResponse`` makes a new encoder per response, a cost on every call.
# DjangoJSONEncoder, as JsonResponse uses; the bodies are JSON-native (pydantic dumps in "json" mode).
_ENCODE = DjangoJSONEncoder(ensure_ascii=False).encode
_ENCODE_FINITE = DjangoJSONEncoder(ensure_ascii=False, allow_nan=False).encode
_ENCODE_ASCII = DjangoJSONEncoder().encode


def json_response(body: dict[str, Any], status: int = 200, *, finite: bool = False, **headers: str) -> HttpResponse:
    """The JSON body as ``JsonResponse`` would write it, without its per-response set-up.
    ``finite``: raise ValueError for a NaN or infinity instead of writing it."""
    try:
        content = (_ENCODE_FINITE if finite else _ENCODE)(body).encode()
    except UnicodeEncodeError:  # a lone surrogate that got past protocol.parse: escape rather than fail
        content = _ENCODE_ASCII(body).encode()
    response = HttpResponse(content, status=status, content_type="application/json")
    # what CommonMiddleware adds to the other views' answers (this one answers before it): without
    # it, gunicorn frames the body as chunks, an extra write per response
    response["Content-Length"] = str(len(content))
    response["Cache-Control"] = "no-store"
    for key, value in headers.items():
        response[key.replace("_", "-")] = value
    return response


def mcp_headers(meta: dict[str, Any]) -> dict[str, str]:
    """The ``Mcp-*`` request headers by lower-case name from the WSGI environ, all that ``parse`` reads
    (the version, method and name headers): ``request.headers`` would parse every header."""
    return {key[5:].replace("_", "-").lower(): value for key, value in meta.items() if key.startswith("HTTP_MCP_")}


@dataclass(frozen=True)
class Incoming:
    message: jsonrpc.JSONRPCRequest | jsonrpc.JSONRPCNotification
    version: str  # the protocol version this request is served at
    modern: bool

    @property
    def method(self) -> str:
        return self.message.method

    @property
    def request_id(self) -> Any:
        return getattr(self.message, "id", None)

    @property
    def tool_name(self) -> str | None:
        """For ``tools/call``, the tool's name as sent (None for any other method, or no string)."""
        params = self.message.params
        if self.method != "tools/call" or not isinstance(params, dict):
            return None
        name = params.get("name")
        return name if isinstance(name, str) else None

    @property
    def is_notification(self) -> bool:
        return isinstance(self.message, jsonrpc.JSONRPCNotification)


def parse(raw: bytes, headers: dict[str, str]) -> Incoming:
    """Decode and classify one POSTed message; raises ProtocolError with the JSON-RPC code to send."""
    try:
        # strict UTF-8 (RFC 8259 §8.1): ``json.loads`` on bytes would accept UTF-16/32 and decode raw
        # surrogate bytes (CESU-8, ``ED A0 80``) with ``surrogatepass`` into lone surrogates
        decoded = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError(jsonrpc.PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    except RecursionError:
        raise ProtocolError(jsonrpc.PARSE_ERROR, "Parse error: the body is nested too deeply") from None
    if isinstance(decoded, list):
        raise ProtocolError(jsonrpc.INVALID_REQUEST, "Batches are not supported")
    if not isinstance(decoded, dict):
        raise ProtocolError(jsonrpc.INVALID_REQUEST, "Invalid Request: expected a JSON-RPC object")
    if _SUSPECT_ESCAPE.search(raw) and _has_bad_string(decoded):
        raise ProtocolError(jsonrpc.INVALID_REQUEST, "Invalid Request: NUL and unpaired surrogates are not allowed")
    request_id = _request_id(decoded)
    try:
        message = envelope(decoded)
    except (ValidationError, RecursionError):
        raise ProtocolError(
            jsonrpc.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message", None, request_id
        ) from None
    if not isinstance(message, (jsonrpc.JSONRPCRequest, jsonrpc.JSONRPCNotification)):
        raise ProtocolError(jsonrpc.INVALID_REQUEST, "Invalid Request: only requests and notifications are accepted")

    header_version = headers.get("mcp-protocol-version")
    if header_version is not None and header_version not in SUPPORTED_VERSIONS:
        # -32022 is the 2026-07-28 error: ``supported`` is what ``server/discover`` lists (the handshake
        # era negotiates its version at ``initialize``), and ``requested`` echoes the version asked for
        raise ProtocolError(
            jsonrpc.UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
            {"supported": list(MODERN_VERSIONS), "requested": header_version},
            request_id,
        )
    modern = header_version in MODERN_VERSIONS or (header_version is None and message.method == "server/discover")
    if modern:
        if isinstance(message, jsonrpc.JSONRPCRequest):
            verdict = classify_inbound_request(decoded, headers=headers, supported_modern_versions=MODERN_VERSIONS)
            if isinstance(verdict, InboundLadderRejection):  # -32022's data: the modern versions, as above
                raise ProtocolError(verdict.code, verdict.message, verdict.data, request_id)
            return Incoming(message, verdict.protocol_version, True)
        return Incoming(message, header_version or MODERN_VERSIONS[0], True)
    return Incoming(message, header_version or DEFAULT_HANDSHAKE_VERSION, False)


def envelope(decoded: dict[str, Any]) -> jsonrpc.JSONRPCMessage:
    """The message as ``jsonrpc.jsonrpc_message_adapter`` reads it. An object with ``id`` and
    ``method`` and neither ``result`` nor ``error`` is validated as a request directly: the adapter's
    union would validate it against all four kinds and pick the request whenever it is one. Anything
    else, and such an object that is not a valid request, goes through the adapter, which decides
    (``tests/test_mcp_envelope.py`` compares the two on generated messages)."""
    if "id" in decoded and "method" in decoded and "result" not in decoded and "error" not in decoded:
        try:
            return jsonrpc.JSONRPCRequest.model_validate(decoded)
        except ValidationError:
            pass
    return jsonrpc.jsonrpc_message_adapter.validate_python(decoded)


def typed_params(incoming: Incoming) -> Any:
    """The request's params as the ``mcp`` package's model for its method and version. Both of
    ``parse_client_request``'s passes are needed: the version-free model it parses into refuses
    fields of other versions with the wrong type, which the version's own model ignores."""
    try:
        request = m.parse_client_request(incoming.method, incoming.version, incoming.message.params)
    except KeyError:
        raise ProtocolError(
            jsonrpc.METHOD_NOT_FOUND, f"Method not found: {incoming.method}", None, incoming.request_id
        ) from None
    except (ValidationError, ValueError):
        raise ProtocolError(
            jsonrpc.INVALID_PARAMS, f"Invalid params for {incoming.method}", None, incoming.request_id
        ) from None
    return request.params


def result_body(
    incoming: Incoming, result: Any, *, server_info: dict[str, str] | None = None, plain: bool = True
) -> dict[str, Any]:
    """``plain=False``: never ``plain_tool_result``'s direct form (which keeps a NaN or infinity in the
    structured content as it is, where the schema's dump writes null: see ``tool_answer``)."""
    data = plain_tool_result(incoming, result) if plain else None
    if data is None:
        data = surface_result(incoming, result)
    if incoming.modern:
        data.setdefault("resultType", "complete")
        if server_info:
            data.setdefault("_meta", {})[SERVER_INFO_META_KEY] = server_info
    return {"jsonrpc": "2.0", "id": incoming.request_id, "result": data}


def surface_result(incoming: Incoming, result: Any) -> dict[str, Any]:
    """``result`` as the request's protocol version writes it: validated against that version's
    schema, whose fields alone are kept (``mcp_types.methods.serialize_server_result``)."""
    data = result if isinstance(result, dict) else result.model_dump(by_alias=True, exclude_none=True, mode="json")
    if incoming.method != "initialize":
        data = m.serialize_server_result(incoming.method, incoming.version, data)
    return data


def plain_tool_result(incoming: Incoming, result: Any) -> dict[str, Any] | None:
    """The usual ``tools/call`` answer (one text block and the structured content, no error, no
    ``_meta``) in wire form, built directly: the dump and the version schema's validation and dump of
    ``surface_result`` cost more per call than the tool's own read. The same dict as
    ``surface_result`` in every supported version (tests/test_mcp_protocol.py); None for any other
    result, which takes that path."""
    if incoming.method != "tools/call" or type(result) is not t.CallToolResult:
        return None
    if result.is_error or result.meta is not None or result.result_type != "complete" or len(result.content) != 1:
        return None
    block = result.content[0]
    if type(block) is not t.TextContent or block.annotations is not None or block.meta is not None:
        return None
    if type(result.structured_content) is not dict:
        return None
    data: dict[str, Any] = {"content": [{"text": block.text, "type": "text"}], "isError": False}
    if incoming.modern:
        data["resultType"] = "complete"
    data["structuredContent"] = result.structured_content
    return data


def tool_answer(incoming: Incoming, result: Any, server_info: dict[str, str]) -> HttpResponse:
    """A plain tool result goes out in ``plain_tool_result``'s direct form; should its structured
    content hold a NaN or infinity (not JSON), the version schema's dump, which writes null."""
    try:
        return json_response(result_body(incoming, result, server_info=server_info), finite=True)
    except ValueError:
        return json_response(result_body(incoming, result, server_info=server_info, plain=False))


def negotiate(requested: str) -> str:
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE_VERSION
