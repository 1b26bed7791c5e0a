"""The server's commands: serve (gunicorn), worker, db upgrade, quota, usage, objects, trash. They need the
settings, the index and the server's dependencies (`pip install 'gitlab-data-registry[server]'`); every
import of the server's layers happens inside the command, so the client install can still list them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.model.projects import ProjectRecord
    from app.settings import Settings

SERVER_COMMANDS = {
    "serve": "run the web server (gunicorn)",
    "worker": "run the lifecycle jobs (deletions, reconciler, usage sweep)",
    "db": "index database maintenance",
    "quota": "show or set a project's storage quota",
    "usage": "projects by storage used",
    "objects": "the objects of a project",
    "trash": "a project's deleted objects, kept for REGISTRY_TRASH_RETENTION",
}


def _settings(*, create: bool) -> Settings:
    """The settings of a server command, refused (exit 2, one line) on a machine that is not the registry's:
    `create` for the commands that may make the index (db upgrade, serve, worker)."""
    from app.errors import ConfigurationError
    from app.settings import index_problem, load_settings

    settings = load_settings()
    problem = index_problem(settings, create=create)
    if problem:
        raise ConfigurationError(problem)
    return settings


def _serve(args: argparse.Namespace) -> int:
    import tempfile

    from app import logs

    settings = _settings(create=True)  # fail fast, naming the variable, before gunicorn forks
    logs.configure(settings.log_level, settings.log_format)
    for feature, how in settings.features_off().items():  # once, here: not again in every worker
        logging.getLogger("app").warning("%s: off (%s)", feature, how)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's metrics in one scrape
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="registry-metrics-")
        os.environ["REGISTRY_REMOVE_METRICS_DIR"] = "1"  # ours: gunicorn's on_exit removes it
    if not args.access_log:
        os.environ["REGISTRY_ACCESS_LOG"] = "false"
    # glibc's malloc, for bodies streamed in pieces of up to 1 MiB that gunicorn copies a few times.
    # Pieces below 4 MiB come from the heap, and up to 16 MiB free at the heap's top stays there: with a
    # fixed 128 KiB mmap threshold (before) every copy of every byte landed on freshly mapped pages,
    # 67,000 page faults and ~0.13 s of system CPU per 50 MB PutObject, now ~100 and ~0.03 s
    # (scripts/bench/door_cpu.py): 40 % of a big upload's CPU on every remote. One arena, not one per
    # thread (16): nearly every allocation happens under the GIL anyway, and the memory the heap keeps is
    # kept once (scripts/bench/remotes.py --sets big, peak worker RSS: 163 MiB before, 190 with two
    # arenas, 170-174 with one).
    os.environ.setdefault("MALLOC_ARENA_MAX", "1")
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", str(4 * 2**20))
    os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(16 * 2**20))
    argv = [
        "gunicorn",
        "app:create_app()",
        "--config",
        "python:app.gunicorn_config",
        "--bind",
        args.bind,
        "--workers",
        str(args.workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.threads),
        # gthread heartbeats do not depend on request length, so long streamed uploads are fine;
        # keep-alive above DVC's idle pool time saves reconnects.
        "--timeout",
        "120",
        "--graceful-timeout",
        "60",
        "--keep-alive",
        "75",
        "--backlog",
        "2048",
        "--limit-request-line",
        "8190",
        # gunicorn 24+ opens a control socket under $HOME: shared between instances, and impossible on a
        # read-only root filesystem. Nothing here uses it.
        "--no-control-socket",
    ]
    if settings.trusted_proxies and "FORWARDED_ALLOW_IPS" not in os.environ:
        # one setting for both: the app reads the client from their X-Forwarded-For, the worker exempts
        # them from its per-address connection cap and counts bodies by the client they forward for
        argv += ["--forwarded-allow-ips", ",".join(str(network) for network in settings.trusted_proxies)]
    os.execvp(sys.executable, [sys.executable, "-m", *argv])
    return 0  # pragma: no cover


def _worker(args: argparse.Namespace) -> int:
    from app.components import build_components
    from app.jobs.scheduler import jobs, run_forever, run_once

    _settings(create=True)
    parts = build_components()
    if args.once is not None:
        names = args.once or list(jobs(parts))
        unknown = sorted(set(names) - set(jobs(parts)))
        if unknown:
            print(f"unknown job {unknown[0]}; jobs: {', '.join(jobs(parts))}", file=sys.stderr)
            return 2
        return 0 if run_once(parts, names) else 1
    run_forever(parts)
    return 0


def _db_upgrade(_: argparse.Namespace) -> int:
    from app.db import upgrade

    upgrade(_settings(create=True).effective_database_url)
    print("database is up to date")
    return 0


def _quota(args: argparse.Namespace) -> int:
    from app.db import build_engine
    from app.db.index import ObjectIndex
    from app.model.projects import ProjectRecord
    from app.model.sizes import human_size, parse_size

    settings = _settings(create=False)
    index = ObjectIndex(build_engine(settings.effective_database_url))
    if args.quota_command == "set":
        if args.size in ("default", "unset"):
            index.set_quota(args.project_id, None)
        else:
            try:
                index.set_quota(args.project_id, parse_size(args.size))
            except ValueError as e:
                print(f"data-registry: {e}", file=sys.stderr)
                return 2
    project = index.project(args.project_id)
    if project is None:
        if args.quota_command == "get":
            print(f"data-registry: project {args.project_id} has no data here", file=sys.stderr)
            return 1
        project = ProjectRecord(args.project_id, f"project {args.project_id}")
    quota = project.effective_quota(settings.default_quota)
    if getattr(args, "json", False):
        _print_json(
            _usage_row(project, quota) | {"quota_origin": "default" if project.own_quota is None else "own"}
        )
        return 0
    limit = "unlimited" if quota == 0 else human_size(quota)
    origin = "default, REGISTRY_DEFAULT_QUOTA" if project.own_quota is None else "set for this project"
    print(
        f"{project.path} (id {project.id}): {human_size(project.used_bytes)} in {project.object_count}"
        f" objects; quota {limit} ({origin})"
    )
    return 0


def _print_json(value: object) -> None:
    print(json.dumps(value, indent=None, default=str))


def _usage_row(project: ProjectRecord, quota: int) -> dict[str, object]:
    return {
        "id": project.id,
        "path": project.path,
        "used_bytes": project.used_bytes,
        "object_count": project.object_count,
        "quota_bytes": quota,
        "trash_bytes": project.trash_bytes,
    }


def _usage(args: argparse.Namespace) -> int:
    from app.db import build_engine
    from app.db.index import ObjectIndex
    from app.model.sizes import human_size

    settings = _settings(create=False)
    projects = ObjectIndex(build_engine(settings.effective_database_url)).projects_by_usage()
    if args.json:
        _print_json([_usage_row(p, p.effective_quota(settings.default_quota)) for p in projects])
        return 0
    print(f"{'id':>8}  {'used':>10}  {'objects':>9}  {'quota':>10}  project")
    for project in projects:
        quota = project.effective_quota(settings.default_quota)
        limit = "unlimited" if quota == 0 else human_size(quota)
        used = human_size(project.used_bytes)
        print(f"{project.id:>8}  {used:>10}  {project.object_count:>9}  {limit:>10}  {project.path}")
    return 0


def _objects_ls(args: argparse.Namespace) -> int:
    from app.db import build_engine
    from app.db.index import ObjectIndex
    from app.model.objects import Listing

    index = ObjectIndex(build_engine(_settings(create=False).effective_database_url))
    after: tuple[None, str] | None = None
    while page := index.page(args.project_id, Listing(prefix=args.prefix, after=after, limit=1000)):
        for info in page:
            if args.json:  # one object per line: streams, and `jq` reads it as it comes
                row = {
                    "path": info.path,
                    "size": info.size,
                    "md5": info.md5,
                    "created_at": info.created_at.isoformat(),
                }
                _print_json(row)
            else:
                print(f"{info.md5}  {info.size:>12}  {info.created_at:%Y-%m-%d %H:%M}  {info.path}")
        after = (None, page[-1].path)
    return 0


def _trash(args: argparse.Namespace) -> int:
    from app.components import build_components
    from app.errors import RegistryError
    from app.model.objects import Listing
    from app.model.projects import Project, Visibility

    _settings(create=False)
    parts = build_components()
    record = parts.index.project(args.project_id)
    if record is None:
        print(f"data-registry: project {args.project_id} has no data here", file=sys.stderr)
        return 1
    if args.trash_command == "restore":
        project = Project(record.id, record.path, Visibility.PRIVATE)
        try:
            restored = parts.trash.restore_paths(project, args.paths)
        except RegistryError as e:
            print(f"data-registry: {e.message}", file=sys.stderr)
            return 1
        for info in restored:
            print(f"restored {info.path}")
        return 0
    after: tuple[None, str] | None = None
    while page := parts.index.page(
        record.id, Listing(prefix=args.prefix, after=after, limit=1000, trashed=True)
    ):
        for info in page:
            purge_at = parts.trash.purge_at(info)
            print(f"{info.md5}  {info.size:>12}  purged {purge_at:%Y-%m-%d %H:%M}  {info.path}")
        after = (None, page[-1].path)
    return 0


def add_server_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """serve, worker, db upgrade, quota, usage, objects ls, trash ls|restore."""
    serve = commands.add_parser("serve", help=SERVER_COMMANDS["serve"])
    serve.add_argument(
        "--bind", default="0.0.0.0:8080", help="address:port to listen on (default: %(default)s)"
    )
    serve.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes (default: %(default)s)"
    )
    serve.add_argument(
        "--threads", type=int, default=16, help="threads per worker process (default: %(default)s)"
    )
    serve.add_argument(
        "--worker-class",
        default="app.gunicorn_worker.GuardedThreadWorker",
        help="gunicorn worker class (default: gthread that gathers requests in its poller, so slow clients "
        "cost no thread; plain `gthread` for comparison)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one log line per request (default: on)",
    )
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("worker", help=SERVER_COMMANDS["worker"])
    worker.add_argument(
        "--once",
        nargs="*",
        metavar="JOB",
        help="run these jobs (default: all) once and exit: deletions, reconcile, usage_sweep, stale_uploads, "
        "hook_deliveries, trash_purge, browser_sessions, data_checks, data_check_records",
    )
    worker.set_defaults(run=_worker)

    quota = commands.add_parser("quota", help=SERVER_COMMANDS["quota"])
    quota_commands = quota.add_subparsers(dest="quota_command", required=True)
    quota_get = quota_commands.add_parser("get", help="usage and quota of a project")
    quota_get.add_argument("project_id", type=int, help="GitLab project id")
    quota_get.add_argument("--json", action="store_true", help="a JSON object instead of a sentence")
    quota_set = quota_commands.add_parser("set", help="give a project its own quota")
    quota_set.add_argument("project_id", type=int, help="GitLab project id")
    quota_set.add_argument("size", help="e.g. 100GiB, 0 (unlimited), or 'default'")
    for command in (quota_get, quota_set):
        command.set_defaults(run=_quota)

    usage = commands.add_parser("usage", help=SERVER_COMMANDS["usage"])
    usage.add_argument("--json", action="store_true", help="a JSON list instead of a table")
    usage.set_defaults(run=_usage)
    objects = commands.add_parser("objects", help=SERVER_COMMANDS["objects"])
    objects_commands = objects.add_subparsers(dest="objects_command", required=True)
    objects_ls = objects_commands.add_parser("ls", help="list a project's objects (md5, size, time, path)")
    objects_ls.add_argument("project_id", type=int, help="GitLab project id")
    objects_ls.add_argument("prefix", nargs="?", default="", help="only paths starting with this")
    objects_ls.add_argument("--json", action="store_true", help="one JSON object per line")
    objects_ls.set_defaults(run=_objects_ls)

    trash = commands.add_parser("trash", help=SERVER_COMMANDS["trash"])
    trash_commands = trash.add_subparsers(dest="trash_command", required=True)
    trash_ls = trash_commands.add_parser("ls", help="list the trash (md5, size, when it is purged, path)")
    trash_ls.add_argument("project_id", type=int, help="GitLab project id")
    trash_ls.add_argument("prefix", nargs="?", default="", help="only paths starting with this")
    trash_restore = trash_commands.add_parser("restore", help="bring objects back (a .dir brings its files)")
    trash_restore.add_argument("project_id", type=int, help="GitLab project id")
    trash_restore.add_argument("paths", nargs="+", metavar="PATH", help="object paths in the project")
    for command in (trash_ls, trash_restore):
        command.set_defaults(run=_trash)

    db = commands.add_parser("db", help=SERVER_COMMANDS["db"])
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_upgrade = db_commands.add_parser("upgrade", help="apply the migrations (alembic)")
    db_upgrade.set_defaults(run=_db_upgrade)
