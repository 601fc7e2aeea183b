"""Search spaces: the ``SearchSpace`` contract, the table space and the supernets."""

from __future__ import annotations

from paretonas_core.registry import Registry

SPACES: Registry = Registry("search space", "paretonas.search_spaces")
# Built-ins, imported lazily (listing names must not import torch).
SPACES.register("table", "search_spaces.table:TableSpace")
SPACES.register("deeplabv3plus", "search_spaces.deeplabv3plus.space:DeepLabSpace")
SPACES.register("randlanet", "search_spaces.randlanet.space:RandLANetSpace")
SPACES.register("bert", "search_spaces.bert.space:BertSpace")
