"""The client commands: doctor, upload, download, import-generic-packages. They need only URLs and a
credential (app/client/); they run on a laptop or in a CI job with the plain `pip install`."""

from __future__ import annotations

import argparse
import os
import sys

CLIENT_COMMANDS = {
    "doctor": "what works and what does not between a credential and a registry URL",
    "upload": "one big file straight to the bucket (parallel parts, resumable)",
    "download": "one file straight from the bucket (resumable, md5 verified)",
    "import-generic-packages": "copy a DVC remote kept in GitLab's generic packages into the registry",
}
RESUMABLE = ("upload", "download", "import-generic-packages")  # run again after a Ctrl-C: they continue


def _client_headers(args: argparse.Namespace) -> dict[str, str]:
    """The credential of a client command: --token (and --user), else $DATA_REGISTRY_TOKEN, $GITLAB_TOKEN,
    then $CI_JOB_TOKEN (as gitlab-ci-token); none of them: anonymous."""
    from app.client.credentials import credential_headers

    token = args.token or next(
        (os.environ[name] for name in ("DATA_REGISTRY_TOKEN", "GITLAB_TOKEN") if os.environ.get(name)), None
    )
    user = getattr(args, "user", None)
    if token is None and os.environ.get("CI_JOB_TOKEN"):
        token, user = os.environ["CI_JOB_TOKEN"], user or "gitlab-ci-token"
    return credential_headers(token, user)


def _doctor(args: argparse.Namespace) -> int:
    from app.client.doctor import Report, diagnose, print_json, say_line

    report = Report(args.url)
    say = (lambda topic, text: None) if args.json else say_line  # --json: the findings are in the report
    status = diagnose(args.url, _client_headers(args), say, require=args.require, report=report)
    if args.json:
        print_json(report)
    return status


def _upload(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.client.transfer import upload

    file = Path(args.file)
    if not file.is_file():
        print(f"data-registry: no such file: {file}", file=sys.stderr)
        return 2
    return upload(file, args.url, _client_headers(args), jobs=args.jobs, overwrite=args.overwrite)


def _download(args: argparse.Namespace) -> int:
    from app.client.errors import ClientError
    from app.client.transfer import destination, download

    try:  # before anything moves: a wrong directory is said now, not after the transfer
        file = destination(args.url, args.file)
    except ClientError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    return download(args.url, file, _client_headers(args))


def _import_generic_packages(args: argparse.Namespace) -> int:
    from app.client.importer import run

    token = args.token or os.environ.get("GITLAB_TOKEN")
    return run(
        args.source_url,
        args.dest_url,
        token=token,
        dest_token=args.dest_token,
        jobs=args.jobs,
        dry_run=args.dry_run,
    )


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """doctor, upload, download, import-generic-packages."""
    doctor = commands.add_parser("doctor", help=CLIENT_COMMANDS["doctor"])
    doctor.add_argument(
        "url",
        nargs="?",
        help="a data URL (https://<registry>/<group>/<project>/-/data/<prefix>) or an S3 door URL "
        "(…/<project>/-/s3/<bucket>); none: the default DVC remote of the repository here",
    )
    doctor.add_argument(
        "--token",
        help="the credential (default: $DATA_REGISTRY_TOKEN, $GITLAB_TOKEN, then $CI_JOB_TOKEN; "
        "none of them: anonymous)",
    )
    doctor.add_argument(
        "--user", help="send the token as Basic auth with this user (deploy tokens; gitlab-ci-token for jobs)"
    )
    doctor.add_argument(
        "--require",
        choices=("read", "write", "delete"),
        help="exit 1 unless the credential may do this on the project (a CI job's first step)",
    )
    doctor.add_argument(
        "--json", action="store_true", help="one JSON document: every finding and the exit status"
    )
    doctor.set_defaults(run=_doctor)

    upload = commands.add_parser("upload", help=CLIENT_COMMANDS["upload"])
    upload.add_argument("file", help="the file to send")
    upload.add_argument("url", help="where it goes: https://<registry>/<group>/<project>/-/data/<path>")
    upload.add_argument("--token", help="the credential (default: as for doctor)")
    upload.add_argument("--jobs", type=int, default=4, help="parts sent at once (default: %(default)s)")
    upload.add_argument("--overwrite", action="store_true", help="replace a different object at that path")
    upload.set_defaults(run=_upload)
    download = commands.add_parser("download", help=CLIENT_COMMANDS["download"])
    download.add_argument("url", help="the object: https://<registry>/<group>/<project>/-/data/<path>")
    download.add_argument(
        "file", help="where to save it: a file, or a directory (an existing one, or a path ending in /)"
    )
    download.add_argument("--token", help="the credential (default: as for doctor)")
    download.set_defaults(run=_download)

    importer = commands.add_parser("import-generic-packages", help=CLIENT_COMMANDS["import-generic-packages"])
    importer.add_argument(
        "source_url",
        help="the remote URL from .dvc/config: https://<gitlab>/api/v4/projects/<id>/packages/generic/<name>",
    )
    importer.add_argument(
        "dest_url", help="the new remote: https://<registry>/<group>/<project>/-/data/<prefix>"
    )
    importer.add_argument("--token", help="a GitLab token for both ends (default: $GITLAB_TOKEN)")
    importer.add_argument("--dest-token", help="another token for the registry")
    importer.add_argument("--jobs", type=int, default=8, help="files copied at once (default: %(default)s)")
    importer.add_argument("--dry-run", action="store_true", help="say what would be copied; copy nothing")
    importer.set_defaults(run=_import_generic_packages)
