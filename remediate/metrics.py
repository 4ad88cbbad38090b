"""Drift metrics for node_exporter's textfile collector, in the Prometheus text format.

`prometheus_client.write_to_textfile` writes a temporary file beside the target and renames it,
so the collector never reads a half-written file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from remediate.correction import Report
from remediate.errors import RemediateError


def registry_for(report: Report, last_success: datetime | None) -> CollectorRegistry:
    """The gauges of one drift pass; `last_success` is the latest successful pass (this one, if
    it succeeded), so a scheduler that keeps failing shows as a stale timestamp."""
    registry = CollectorRegistry()
    labels = ["provider"]
    drifted = Gauge(
        "remediate_drifted_resources",
        "Resources that differed from the policy in the last drift run.",
        labels,
        registry=registry,
    )
    fixed = Gauge(
        "remediate_fixed_resources",
        "Resources the last drift run fixed and read back.",
        labels,
        registry=registry,
    )
    failed = Gauge(
        "remediate_failed_resources",
        "Resources the last drift run tried and failed to fix.",
        labels,
        registry=registry,
    )
    # A pass that failed knows no reliable counts: leave them out rather than report zeros.
    if report.status != "error":
        for provider, counts in report.by_provider().items():
            drifted.labels(provider).set(counts["drifted"])
            fixed.labels(provider).set(counts["fixed"])
            failed.labels(provider).set(counts["failed"])
    Gauge(
        "remediate_last_run_timestamp_seconds",
        "When the last drift run started (Unix time).",
        registry=registry,
    ).set(datetime.fromisoformat(report.started_at).timestamp())
    Gauge(
        "remediate_last_run_success",
        "1 when the last drift run completed (clean, drift reported or fixed), else 0.",
        registry=registry,
    ).set(1 if report.successful else 0)
    if last_success is not None:
        Gauge(
            "remediate_last_success_timestamp_seconds",
            "When the last successful drift run finished (Unix time).",
            registry=registry,
        ).set(last_success.timestamp())
    return registry


def write(path: Path, report: Report, last_success: datetime | None) -> None:
    """Replace `path` atomically with the metrics of `report`."""
    try:
        write_to_textfile(str(path), registry_for(report, last_success))
    except OSError as exc:
        raise RemediateError(f"{path}: cannot write the metrics file: {exc.strerror}") from None
