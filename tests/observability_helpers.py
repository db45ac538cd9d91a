"""Reading the platform's /metrics over HTTP in tests."""

from __future__ import annotations

import httpx
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def scrape(base_url: str) -> str:
    response = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {settings.METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(snapshot: Samples, name: str, **labels: str) -> float:
    return snapshot.get((name, frozenset(labels.items())), 0.0)
