"""``paretonas data <generator> DIR``: write datasets in standard on-disk layouts, with the
generators registered with the search spaces (``search_spaces.DATA_GENERATORS``)."""

from __future__ import annotations

import argparse

from search_spaces import DATA_GENERATORS
from service.interfaces.commands._dispatch import register_plugins


def register(sub: argparse._SubParsersAction) -> None:
    register_plugins(sub.add_parser("data", help="generate datasets"), DATA_GENERATORS,
                     "generate a dataset")
