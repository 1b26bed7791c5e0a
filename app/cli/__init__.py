"""The `data-registry` command: the parser, with the server's commands (app/cli/server.py) and the
client's (app/cli/client.py) as two groups in `--help`, and the entry point."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from app.cli.client import CLIENT_COMMANDS, add_client_commands
from app.cli.server import SERVER_COMMANDS, add_server_commands
from app.errors import ConfigurationError

SERVER_EXTRA = "pip install 'gitlab-data-registry[server]'"


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The groups' command lists as written; every default named."""


def _listing(commands: dict[str, str]) -> str:
    width = max(map(len, commands))
    return "\n".join(f"{name:<{width}}  {text}" for name, text in commands.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="data-registry",
        usage="%(prog)s [-h] [--version] COMMAND ...",
        description="GitLab Data Registry: a data registry for every GitLab project (REGISTRY_* variables\n"
        "configure the server; see the README)",
        formatter_class=_Formatter,
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
    except BrokenPipeError:  # `data-registry objects ls 101 | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
