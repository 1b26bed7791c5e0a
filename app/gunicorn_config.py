"""gunicorn settings that need code or a word of why (`data-registry serve` passes `-c
python:app.gunicorn_config`): connections per worker, Prometheus multiprocess clean-up when a worker or
the master exits, and gunicorn's own log lines in the registry's format (JSON when
REGISTRY_LOG_FORMAT=json)."""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any

from gunicorn.glogging import Logger

from app.metrics import mark_process_dead

_FORMATTER = (
    "app.logs.JSONFormatter" if os.environ.get("REGISTRY_LOG_FORMAT") == "json" else "app.logs.TextFormatter"
)

# Per worker. An idle or slow client costs the registry's worker a socket in its poller, never a thread,
# so sockets can be many: the worker raises its soft descriptor limit to the hard one to hold them (and
# takes fewer if the hard limit is lower), and at the limit closes the longest-idle connection to let a
# new one in. GUNICORN_CMD_ARGS="--worker-connections N" overrides it.
worker_connections = 16_384

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"registry": {"()": _FORMATTER}},
    "filters": {"request_id": {"()": "app.logs.RequestIdFilter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "registry",
            "filters": ["request_id"],
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},  # the app logs access
    },
}


class RegistryLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's logger, except that a request's access line is not built (its atoms are ~5% of a small
    request's CPU) when its logger would drop it: the app writes the access log, gunicorn.access is off."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


logger_class = RegistryLogger


def child_exit(_server: Any, worker: Any) -> None:
    mark_process_dead(worker.pid)


def on_exit(_server: Any) -> None:
    """Remove the metrics directory `data-registry serve` made for this master (one per start otherwise)."""
    if os.environ.get("REGISTRY_REMOVE_METRICS_DIR") == "1":
        shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)
