"""The compiled argument check (fastjsonschema) only ever accepts what jsonschema accepts.

``check_arguments`` lets a call through on the compiled check alone and sends everything it refuses to
jsonschema, which decides and words the error; so the one property that matters is that the compiled
check never accepts what jsonschema refuses. Checked on every registered tool's schema, on arguments
built from its own properties, and on the keywords whose meaning differs between drafts.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from jsonschema import validators
from mcp_types import jsonrpc

from declarations.tools import ToolSpec, all_tools
from mcp_tools.execution import check_arguments
from mcp_tools.protocol import ProtocolError

CANDIDATES: list[Any] = [
    None, True, False, 0, 1, -1, 2, 7, 1.0, 1.5, -0.5, 2**63, 10**30, float("inf"),
    "", "a", "ab", "abc", "x" * 300, "x" * 5000, "ACME", "note: hi", "2026-01-01", "x@example.com", "42",
    "\u00e9t\u00e9", [], [1], ["a"], {}, {"a": 1},
]  # fmt: skip


def _arguments(spec: ToolSpec, rng: random.Random) -> Any:
    properties = list(spec.input_schema.get("properties", {}))
    roll = rng.random()
    if roll < 0.03:
        return rng.choice([None, [], "x", 1, True])  # not an object at all
    arguments = {name: rng.choice(CANDIDATES) for name in properties if rng.random() < 0.8}
    if roll > 0.95:
        arguments["unexpected"] = 1
    return arguments


def _spec(schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(
        name="probe", title="", description="", input_schema=schema, output_schema=None, scopes=("crm.read",),
        noauth=False, read_only=True, destructive=False, needs_connector=None, handler=lambda context, args: {},
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(all_tools()))
def test_the_compiled_check_accepts_only_what_jsonschema_accepts(name):
    spec = all_tools()[name]
    assert spec.quick_check is not None, "every tool's schema is one the compiled check covers"
    rng = random.Random(name)
    verdicts = set()
    for _ in range(3000):
        arguments = _arguments(spec, rng)
        quick, full = spec.quickly_accepted(arguments), spec.validator.is_valid(arguments)
        assert not (quick and not full), arguments
        verdicts.add(full)
    assert False in verdicts  # the corpus reaches the refusals, not only one side


def test_the_corpus_reaches_acceptance():
    accepted = 0
    for spec in all_tools().values():
        rng = random.Random(spec.name)
        for _ in range(3000):
            arguments = _arguments(spec, rng)
            if spec.quickly_accepted(arguments):
                assert spec.validator.is_valid(arguments)
                accepted += 1
    assert accepted > 100


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "object", "properties": {"n": {"type": "integer"}}}, {"n": True}),
        ({"type": "object", "properties": {"n": {"type": "number"}}}, {"n": False}),
        ({"enum": [1]}, True),
        ({"const": 0}, False),
        ({"type": "array", "items": {"type": "integer"}}, [True]),
        ({"type": "string", "maxLength": 2}, "\u00e9t\u00e9"),
        ({"type": "object", "required": ["a"]}, {}),
    ],
)
def test_bool_is_no_number_and_lengths_count_characters(schema, value):
    spec = _spec(schema)
    assert spec.quick_check is not None
    assert not spec.quickly_accepted(value)
    assert not validators.validator_for(schema)(schema).is_valid(value)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}},
        {"type": "array", "prefixItems": [{"type": "integer"}]},
        {"type": "array", "items": [{"type": "integer"}]},  # draft-07's tuple form is 2020-12's prefixItems
        {"type": "object", "unevaluatedProperties": False},
        {"type": "string", "format": "email"},
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "exclusiveMinimum": True},
    ],
)
def test_keywords_that_differ_between_drafts_go_to_jsonschema(schema):
    assert _spec(schema).quick_check is None
    assert not _spec(schema).quickly_accepted(1)


def test_refused_arguments_keep_jsonschemas_message():
    spec = all_tools()["crm_get_contact"]
    check_arguments(spec, {"contact_id": 3}, 1)
    with pytest.raises(ProtocolError) as refused:
        check_arguments(spec, {"contact_id": 0}, 7)
    assert refused.value.code == jsonrpc.INVALID_PARAMS
    assert refused.value.message == "Invalid arguments for crm_get_contact: 0 is less than the minimum of 1"
