"""``paretonas supernet train <space> ...``: supernet trainers, one module per space."""

from __future__ import annotations

import argparse

from service.commands._dispatch import register_plugins

#: space name -> module exposing add_arguments(parser) and main(args)
TRAINERS: dict[str, str] = {
    "randlanet": "search_spaces.randlanet.train",
    "deeplabv3plus": "search_spaces.deeplabv3plus.train",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("supernet", help="train supernets")
    inner = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    register_plugins(inner.add_parser("train", help="train a supernet (sandwich rule)"),
                     TRAINERS, "train a supernet")
