"""Shared plumbing for command groups whose subcommands live in plug-in modules.

Plug-in modules, registered in a ``Registry`` (built-in or through its entry-point group), expose
``add_arguments(parser)``, ``main(args) -> int`` and ``CLI_HELP`` (the user-facing description;
the module docstring is for developers). They are imported only when their subcommand runs, so
``paretonas --help`` and the client commands never pay for
torch.
"""

from __future__ import annotations

import argparse

from paretonas_core.registry import Registry


def register_plugins(group: argparse.ArgumentParser, plugins: Registry, help_: str) -> None:
    names = plugins.names()
    group.add_argument("plugin", choices=names, metavar="NAME",
                       help=f"{help_}: one of {', '.join(names) or '(none)'}")
    group.add_argument("plugin_args", nargs=argparse.REMAINDER,
                       help="arguments of NAME (see NAME --help)")

    def run(args: argparse.Namespace) -> int:
        module = plugins.get(args.plugin)
        parser = argparse.ArgumentParser(prog=f"{group.prog} {args.plugin}",
                                         description=getattr(module, "CLI_HELP", None))
        module.add_arguments(parser)
        return int(module.main(parser.parse_args(args.plugin_args)) or 0)

    group.set_defaults(func=run)
