"""``paretonas supernet train <space> ...``: the supernet trainers registered with the search
spaces (``search_spaces.TRAINERS``)."""

from __future__ import annotations

import argparse

from search_spaces import TRAINERS
from service.interfaces.commands._dispatch import register_plugins


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("supernet", help="train supernets")
    inner = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    register_plugins(inner.add_parser("train", help="train a supernet (sandwich rule)"),
                     TRAINERS, "train a supernet")
