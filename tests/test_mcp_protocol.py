"""``mcp_tools.protocol``'s direct form of a plain ``tools/call`` result against the ``mcp`` package's
own dump of the same result, in every protocol version the endpoint serves (the direct form
skips the version schema's validation on the hot path, so it must never write anything else)."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as t
import pytest
from mcp_types import jsonrpc

from mcp_tools import protocol
from mcp_tools.protocol import Incoming


def incoming(version: str, method: str = "tools/call") -> Incoming:
    message = jsonrpc.JSONRPCRequest(jsonrpc="2.0", id=7, method=method, params={"name": "x", "arguments": {}})
    return Incoming(message, version, version in protocol.MODERN_VERSIONS)


def text_result(output: Any, **fields: Any) -> t.CallToolResult:
    text = json.dumps(output, ensure_ascii=False)
    return t.CallToolResult(content=[t.TextContent(type="text", text=text)], structured_content=output, **fields)


OUTPUTS = [
    {"id": 1, "name": "Ada Lovelace", "email": "", "notes": []},
    {"id": 2, "name": "Zoë ✓ 😀", "notes": [{"id": 3, "body": 'a\nb "q"', "created_at": "2026-11-28T10:00:00Z"}]},
    {"nested": {"deep": [1, 2.5, True, None, {"k": "v"}]}, "empty": {}},
    {},
]


@pytest.mark.parametrize("version", protocol.SUPPORTED_VERSIONS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_plain_tool_result_is_the_schema_dump(version, output):
    result = text_result(output, is_error=False)
    direct = protocol.plain_tool_result(incoming(version), result)
    assert direct is not None
    assert direct == protocol.surface_result(incoming(version), result)
    # the same JSON, byte for byte (key order included), as the endpoint writes it
    assert json.dumps(direct, ensure_ascii=False) == json.dumps(
        protocol.surface_result(incoming(version), result), ensure_ascii=False
    )
    info = {"name": "Acme MCP", "version": "0.1.0"}
    assert protocol.result_body(incoming(version), result, server_info=info) == protocol.result_body(
        incoming(version), result, server_info=info, plain=False
    )


@pytest.mark.parametrize(
    "result",
    [
        text_result({"a": 1}, is_error=True),  # errors keep the schema's path
        text_result({"a": 1}, is_error=False, _meta={"k": "v"}),
        t.CallToolResult(content=[t.TextContent(type="text", text="no structured content")], is_error=False),
        t.CallToolResult(
            content=[t.TextContent(type="text", text="a"), t.TextContent(type="text", text="b")],
            structured_content={},
            is_error=False,
        ),
        t.CallToolResult(
            content=[t.TextContent(type="text", text="{}", annotations=t.Annotations(priority=0.5))],
            structured_content={},
            is_error=False,
        ),
    ],
)
def test_other_results_take_the_schema_path(result):
    for version in protocol.SUPPORTED_VERSIONS:
        assert protocol.plain_tool_result(incoming(version), result) is None


def test_only_tools_call_results_are_written_directly():
    result = text_result({"a": 1}, is_error=False)
    assert protocol.plain_tool_result(incoming(protocol.MODERN_VERSIONS[0], "tools/list"), result) is None


def test_a_non_finite_float_is_left_to_the_schema_dump():
    # the direct form keeps NaN as it is (not JSON), the schema's dump writes null: the endpoint
    # encodes the direct form strictly and falls back to plain=False (mcp_tools.protocol.tool_answer)
    result = text_result({"x": float("nan")}, is_error=False)
    version = protocol.MODERN_VERSIONS[0]
    direct = protocol.result_body(incoming(version), result)
    with pytest.raises(ValueError):
        json.dumps(direct, allow_nan=False)
    fallback = protocol.result_body(incoming(version), result, plain=False)
    assert fallback["result"]["structuredContent"] == {"x": None}


def test_the_endpoint_answers_null_for_a_non_finite_float():
    version = protocol.MODERN_VERSIONS[0]
    info = {"name": "Acme MCP", "version": "0.1.0"}
    response = protocol.tool_answer(incoming(version), text_result({"x": float("inf"), "y": 1}, is_error=False), info)
    body = json.loads(response.content, parse_constant=lambda name: pytest.fail(f"{name} in the body"))
    assert body["result"]["structuredContent"] == {"x": None, "y": 1}
    plain = protocol.tool_answer(incoming(version), text_result({"y": 1}, is_error=False), info)
    # framed by its length, as CommonMiddleware would (gunicorn would otherwise send chunks)
    assert plain["Content-Length"] == str(len(plain.content))
    assert (
        json.loads(plain.content)["result"]
        == protocol.result_body(
            incoming(version), text_result({"y": 1}, is_error=False), server_info=info, plain=False
        )["result"]
    )
