"""``mcp_tools.protocol.envelope`` validates a request as one instead of through the ``mcp``
package's ``jsonrpc_message_adapter`` union: on generated messages (no database, no server) it
reads every one as the adapter does, the same kind with the same fields, or refuses it as the
adapter does."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp_types import jsonrpc
from pydantic import ValidationError

from mcp_tools.protocol import envelope
from tests.fuzz_strategies import json_value

EXAMPLES = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

request_id = st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=8), st.none())
method = st.one_of(st.sampled_from(["tools/call", "tools/list", "ping", "initialize"]), json_value)
small_dict = st.dictionaries(st.text(max_size=6), json_value, max_size=3)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """JSON-RPC-like objects: every member present or not, well-typed or not."""
    fields = {
        "jsonrpc": st.one_of(st.just("2.0"), st.just("1.0"), json_value),
        "id": request_id,
        "method": method,
        "params": st.one_of(st.none(), small_dict, json_value),
        "result": st.one_of(small_dict, json_value),
        "error": st.one_of(st.fixed_dictionaries({"code": st.integers(), "message": st.text(max_size=8)}), json_value),
        "extra": json_value,
    }
    weights = {"jsonrpc": 0.9, "id": 0.8, "method": 0.8, "params": 0.6, "result": 0.15, "error": 0.15, "extra": 0.1}
    message = {}
    for name, strategy in fields.items():
        if draw(st.floats(0, 1)) < weights[name]:
            message[name] = draw(strategy)
    return message


def outcome(read: Any, value: Any) -> tuple[str, Any]:
    try:
        return "ok", read(value)
    except ValidationError:
        return "refused", None


@EXAMPLES
@given(messages())
def test_envelope_reads_every_message_as_the_adapter_does(message):
    expected = outcome(jsonrpc.jsonrpc_message_adapter.validate_python, message)
    got = outcome(envelope, message)
    assert got == expected and type(got[1]) is type(expected[1])


def test_the_generated_messages_reach_every_answer():
    """The property above would pass vacuously if the generator never made a request (or only those)."""
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}}
    assert type(envelope(request)) is jsonrpc.JSONRPCRequest
    assert type(envelope({"jsonrpc": "2.0", "id": 1.5, "method": "ping"})) is jsonrpc.JSONRPCNotification
    assert type(envelope({"jsonrpc": "2.0", "id": 1, "result": {}})) is jsonrpc.JSONRPCResponse
    assert outcome(envelope, {"jsonrpc": "1.0", "id": 1, "method": "ping"}) == ("refused", None)
