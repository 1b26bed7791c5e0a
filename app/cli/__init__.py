"""The `data-registry` command: the parser, with the server's commands (app/cli/server.py) and the
client's (app/cli/client.py) as two groups in `--help`, and the entry point."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Sequence

from app.cli.client import CLIENT_COMMANDS, RESUMABLE, add_client_commands
from app.cli.server import SERVER_COMMANDS, add_server_commands
from app.errors import ConfigurationError

SERVER_EXTRA = "pip install 'gitlab-data-registry[server]'"
INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C


def _listing(commands: dict[str, str]) -> str:
    width = max(map(len, commands))
    return "\n".join(f"{name:<{width}}  {text}" for name, text in commands.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data-registry",
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description="GitLab Data Registry: a data registry for every GitLab project (REGISTRY_* variables\n"
        "configure the server; see the README)",
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the lists as written
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    # argparse lists one subparsers action as one block: the two rooms are listed by these groups instead
    parser.add_argument_group(
        f"server commands (the registry's pods; {SERVER_EXTRA})", _listing(SERVER_COMMANDS)
    )
    parser.add_argument_group("client commands (a laptop or a CI job)", _listing(CLIENT_COMMANDS))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help=argparse.SUPPRESS)
    add_server_commands(commands)
    add_client_commands(commands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitlab-data-registry")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `data-registry` console script."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        sys.stdout.flush()
    except ConfigurationError as e:
        print(f"data-registry: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if args.command not in SERVER_COMMANDS or (e.name or "app").split(".")[0] == "app":
            raise
        # the client install has no server: one line that says what to install, not a traceback
        print(
            f"data-registry: {args.command} is a server command and this install has no server"
            f" ({e.name} is missing): {SERVER_EXTRA}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return _interrupted(args.command)
    except BrokenPipeError:  # `data-registry objects ls 101 | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return code


def _interrupted(command: str) -> int:
    """Ctrl-C: one line, no traceback, exit 130. A transfer's partial file and state file stay where they
    are (both are written so that any moment is a good one to stop), so the same command resumes."""
    again = " — run the same command to resume" if command in RESUMABLE else ""
    print(f"data-registry: interrupted{again}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        # parts or files still in flight on pool threads: the interpreter would wait for them at exit
        os._exit(INTERRUPTED)
    return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
