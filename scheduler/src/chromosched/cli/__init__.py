"""The ``chromosched`` command line.

Each area registers its own subcommands (``cli/static.py``, ``cli/dynamic.py``, ``cli/prior.py``,
``cli/plan.py``, ``cli/report.py``) through ``register(commands, simulate)``: ``commands`` is the top-level subparser
collection, ``simulate`` the collection under ``chromosched simulate``. A handler is stored as
``func`` on its parser and returns the exit status.

Errors: argparse reports bad arguments with exit status 2; a ``ChromoschedError`` raised by a handler
is printed as one line, ``chromosched: error: ...``, also with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ChromoschedError
from . import dynamic, plan, prior, report, static

AREAS = (static, dynamic, prior, plan, report)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (usage is available with --help)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chromosched", description=__doc__.splitlines()[0])
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"chromosched {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    simulate_parser = commands.add_parser("simulate", help="simulate a scheduler (static or dynamic)")
    simulate = simulate_parser.add_subparsers(dest="simulation", required=True, metavar="MODE", parser_class=_Parser)
    for area in AREAS:
        area.register(commands, simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ChromoschedError as err:
        print(f"chromosched: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `chromosched ... | head`
        return 0


def console_main() -> None:  # pragma: no cover - thin wrapper
    sys.exit(main())
