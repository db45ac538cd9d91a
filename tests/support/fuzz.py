"""The fuzzer's hypothesis settings: bounded examples, ``FUZZ_EXAMPLES`` for a deeper run."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))  # per endpoint family; raise it for a deeper run


FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # CI explores the same examples every run, so a red run is reproducible; local runs draw new ones
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
