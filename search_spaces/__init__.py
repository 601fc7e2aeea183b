"""Search spaces: the ``SearchSpace`` contract, the table space and the supernets, with the
supernet trainers and dataset generators that belong to them.

Each registry maps names to built-ins imported lazily (listing names must not import torch);
third-party ones register through the entry-point group named here. Trainers and generators
are modules exposing ``add_arguments(parser)`` and ``main(args)`` (``paretonas supernet train
NAME``, ``paretonas data NAME``).
"""

from __future__ import annotations

from paretonas_core.registry import Registry

SPACES: Registry = Registry("search space", "paretonas.search_spaces")
TRAINERS: Registry = Registry("supernet trainer", "paretonas.trainers")
DATA_GENERATORS: Registry = Registry("data generator", "paretonas.data_generators")

SPACES.register("table", "search_spaces.table:TableSpace")
SPACES.register("deeplabv3plus", "search_spaces.deeplabv3plus.space:DeepLabSpace")
TRAINERS.register("deeplabv3plus", "search_spaces.deeplabv3plus.train")
DATA_GENERATORS.register("synth-voc", "search_spaces.deeplabv3plus.synth")
SPACES.register("randlanet", "search_spaces.randlanet.space:RandLANetSpace")
TRAINERS.register("randlanet", "search_spaces.randlanet.train")
DATA_GENERATORS.register("synth-scenes", "search_spaces.randlanet.synthetic")
SPACES.register("bert", "search_spaces.bert.space:BertSpace")
DATA_GENERATORS.register("stdlib-topics", "search_spaces.bert.generate")
