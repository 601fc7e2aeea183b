"""``paretonas`` command line. Each command group lives in
``service/interfaces/commands/<group>.py`` and exposes ``register(subparsers)``; heavy imports
happen inside the commands, not here."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from service.interfaces.commands import CliError
from service.settings import SettingsError

COMMAND_MODULES = [
    "service.interfaces.commands.server",
    "service.interfaces.commands.run",
    "service.interfaces.commands.studies",
    "service.interfaces.commands.supernet",
    "service.interfaces.commands.data",
    "service.interfaces.commands.devices",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretonas", description="Multi-objective neural-architecture search service."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # one INFO line per HTTP request drowns the commands' own output
        logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except (CliError, SettingsError) as exc:
        print(f"paretonas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
