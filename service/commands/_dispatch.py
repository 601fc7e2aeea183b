"""Shared plumbing for command groups whose subcommands live in plug-in modules."""

from __future__ import annotations

import argparse
import importlib


def register_plugins(group: argparse.ArgumentParser, plugins: dict[str, str], help_: str) -> None:
    """Each plugin module exposes ``add_arguments(parser)`` and ``main(args) -> int``."""
    sub = group.add_subparsers(dest="plugin", required=True, metavar="NAME")
    for name, module_path in sorted(plugins.items()):
        module = importlib.import_module(module_path)
        p = sub.add_parser(name, help=(module.__doc__ or help_).strip().split("\n")[0])
        module.add_arguments(p)
        p.set_defaults(func=module.main)
