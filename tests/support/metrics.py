"""Reading Prometheus metrics in tests: this process's registry, or a listener's /metrics."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def local(name: str, **labels: str) -> float:
    """A sample of this process's registry (0 if the series does not exist yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def local_total(name: str, **labels: str) -> float:
    """The sum of ``name`` in this process's registry over the series matching ``labels``."""
    return total(parse(generate_latest(REGISTRY).decode()), name, **labels)


def parse(text: str) -> Samples:
    """Every sample of a /metrics body, by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(url: str) -> tuple[str, Samples]:
    """The body of ``url`` (a /metrics endpoint) and its samples."""
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/plain"
        text = await response.text()
    return text, parse(text)


def value(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """One sample (0 if absent)."""
    return samples.get((name, frozenset((labels or {}).items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)
