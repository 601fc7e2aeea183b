"""``paretonas data <generator> DIR``: write datasets in standard on-disk layouts."""

from __future__ import annotations

import argparse

from service.commands._dispatch import register_plugins

#: generator name -> module exposing add_arguments(parser) and main(args)
GENERATORS: dict[str, str] = {
    "synth-scenes": "search_spaces.randlanet.synthetic",
    "synth-voc": "search_spaces.deeplabv3plus.synth",
    "stdlib-topics": "search_spaces.bert.generate",
}


def register(sub: argparse._SubParsersAction) -> None:
    register_plugins(sub.add_parser("data", help="generate datasets"), GENERATORS,
                     "generate a dataset")
