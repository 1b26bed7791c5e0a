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
    from app.client.doctor import diagnose

    return diagnose(args.url, _client_headers(args), lambda topic, text: print(f"{topic:>14}  {text}"))


def _upload(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.client.transfer import upload

    file = Path(args.file)
    if not file.is_file():
        print(f"data-registry: no such file: {file}", file=sys.stderr)
        return 2
    return upload(file, args.url, _client_headers(args), jobs=args.jobs, overwrite=args.overwrite)


def _download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.client.transfer import download

    return download(args.url, Path(args.file), _client_headers(args))


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
    formatter = argparse.ArgumentDefaultsHelpFormatter
    doctor = commands.add_parser(
        "doctor",
        help=CLIENT_COMMANDS["doctor"],
        formatter_class=formatter,
    )
    doctor.add_argument("url", help="a data URL: https://<registry>/<group>/<project>/-/data/<prefix>")
    doctor.add_argument(
        "--token",
        help="the credential (default: $DATA_REGISTRY_TOKEN, $GITLAB_TOKEN, then $CI_JOB_TOKEN; "
        "none of them: anonymous)",
    )
    doctor.add_argument(
        "--user", help="send the token as Basic auth with this user (deploy tokens; gitlab-ci-token for jobs)"
    )
    doctor.set_defaults(run=_doctor)

    upload = commands.add_parser(
        "upload",
        help=CLIENT_COMMANDS["upload"],
        formatter_class=formatter,
    )
    upload.add_argument("file", help="the file to send")
    upload.add_argument("url", help="where it goes: https://<registry>/<group>/<project>/-/data/<path>")
    upload.add_argument("--token", help="the credential (default: as for doctor)")
    upload.add_argument("--jobs", type=int, default=4, help="parts sent at once")
    upload.add_argument("--overwrite", action="store_true", help="replace a different object at that path")
    upload.set_defaults(run=_upload)
    download = commands.add_parser(
        "download",
        help=CLIENT_COMMANDS["download"],
        formatter_class=formatter,
    )
    download.add_argument("url", help="the object: https://<registry>/<group>/<project>/-/data/<path>")
    download.add_argument("file", help="where to save it")
    download.add_argument("--token", help="the credential (default: as for doctor)")
    download.set_defaults(run=_download)

    importer = commands.add_parser(
        "import-generic-packages",
        help=CLIENT_COMMANDS["import-generic-packages"],
        formatter_class=formatter,
    )
    importer.add_argument(
        "source_url",
        help="the remote URL from .dvc/config: https://<gitlab>/api/v4/projects/<id>/packages/generic/<name>",
    )
    importer.add_argument(
        "dest_url", help="the new remote: https://<registry>/<group>/<project>/-/data/<prefix>"
    )
    importer.add_argument("--token", help="a GitLab token for both ends (default: $GITLAB_TOKEN)")
    importer.add_argument("--dest-token", help="another token for the registry")
    importer.add_argument("--jobs", type=int, default=8, help="files copied at once")
    importer.add_argument("--dry-run", action="store_true", help="say what would be copied; copy nothing")
    importer.set_defaults(run=_import_generic_packages)
