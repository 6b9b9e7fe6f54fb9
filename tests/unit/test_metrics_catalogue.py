"""The README's metrics catalogue lists exactly the metrics of core/metrics.py, with their types
and labels, so it cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

from tickerwire.core.metrics import catalogue

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(
    r"^\| `(?P<name>[a-z_:]+)` \| (?P<type>\w+) \| (?P<labels>[^|]*) \| (?P<help>.+) \|$"
)


def _readme_rows() -> dict[str, tuple[str, tuple[str, ...]]]:
    text = README.read_text("utf-8")
    start = text.index("<!-- metrics-catalogue:start -->")
    end = text.index("<!-- metrics-catalogue:end -->")
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in text[start:end].splitlines():
        m = ROW.match(line.strip())
        if m:
            assert m["name"] not in rows, f"{m['name']} is listed twice"
            labels = tuple(x.strip() for x in m["labels"].split(",") if x.strip())
            rows[m["name"]] = (m["type"], labels)
    return rows


def test_readme_catalogue_matches_the_registry() -> None:
    documented = _readme_rows()
    defined = {name: (kind, labels) for name, kind, labels, _ in catalogue()}
    missing = sorted(defined.keys() - documented.keys())
    extra = sorted(documented.keys() - defined.keys())
    assert not missing, f"metrics missing from the README catalogue: {missing}"
    assert not extra, f"README catalogue lists metrics that do not exist: {extra}"
    for name, (kind, labels) in defined.items():
        assert documented[name] == (kind, labels), f"{name}: README says {documented[name]}"


def test_every_metric_has_help_text() -> None:
    for name, _, _, doc in catalogue():
        assert name.startswith("tickerwire_"), name
        assert len(doc) > 10, f"{name} needs a meaningful help text"
