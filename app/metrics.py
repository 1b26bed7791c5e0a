"""Prometheus metrics, the only module that imports prometheus_client. Under gunicorn every worker
process writes its values to PROMETHEUS_MULTIPROC_DIR (set by `data-registry serve`) and a scrape adds
them up; without it (tests, the worker) values live in this object's own registry."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The registry's counters; one instance per process (each app and the worker build their own)."""

    def __init__(self) -> None:
        self._multiprocess = bool(os.environ.get(MULTIPROCESS))
        self._registry = CollectorRegistry()
        into = None if self._multiprocess else self._registry
        self.requests = Counter(
            "registry_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=into
        )
        self.latency = Histogram(
            "registry_http_request_duration_seconds",
            "Time to the response headers",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=into,
        )
        # (route, method, status) -> the two children count_request adds to; as many as prometheus keeps
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.upload_bytes = Counter(
            "registry_upload_bytes", "Bytes of objects stored by uploads", registry=into
        )
        self.redirects = Counter(
            "registry_download_redirects", "Downloads answered with a redirect to a signed URL", registry=into
        )
        self.gitlab_calls = Counter(
            "registry_gitlab_api_calls", "Calls to GitLab's API, by outcome", ["outcome"], registry=into
        )
        self.auth_cache = Counter(
            "registry_auth_cache_lookups",
            "Permission look-ups: answered in this process (local), by the shared cache, or by GitLab",
            ["result"],
            registry=into,
        )
        self.quota_refusals = Counter(
            "registry_quota_refusals",
            "Uploads refused over quota or the file-size limit",
            ["reason"],
            registry=into,
        )
        self.dependency_errors = Counter(
            "registry_dependency_errors",
            "Requests answered 503 because a dependency (storage, database, gitlab) could not answer",
            ["dependency"],
            registry=into,
        )
        self.job_runs = Counter(
            "registry_job_runs", "Worker job runs, by job and outcome", ["job", "outcome"], registry=into
        )

    def count_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request: counted by route, method and status, its time by route and method. The
        labelled children are looked up once per combination, not twice per request."""
        children = self._request_children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route=route, method=method, status=str(status)),
                self.latency.labels(route=route, method=method),
            )
            self._request_children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self, extra: Collector | None = None) -> tuple[bytes, str]:
        """The exposition text of every process's values (plus `extra`), and its content type."""
        registry = self._registry
        if self._multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        if extra is not None:
            registry.register(extra)
        try:
            return generate_latest(registry), CONTENT_TYPE_LATEST
        finally:
            if extra is not None:
                registry.unregister(extra)

    def serve(self, port: int) -> None:
        """Expose this process's values on http://0.0.0.0:port/metrics from a daemon thread (the worker)."""
        from prometheus_client import start_http_server

        start_http_server(port, registry=self._registry)


class Backlog(Collector):
    """The deletion backlog, read from the database at scrape time."""

    def __init__(self, count: int) -> None:
        self._count = count

    def collect(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "registry_deletion_backlog_projects", "Projects queued for deletion", self._count
            )
        ]


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit hook: drop a dead worker's live gauges (counters are kept)."""
    from prometheus_client import multiprocess

    if os.environ.get(MULTIPROCESS):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
