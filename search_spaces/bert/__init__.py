"""BERT supernet space: elastic depth, heads and FFN neurons of a pretrained BERT (MiniLM by
default), with DynaBERT-style importance reordering. See ``space.py``."""

from __future__ import annotations

__all__ = ["BertSpace"]


def __getattr__(name: str):
    # lazy so that importing the package (e.g. for the registry) does not import torch
    if name == "BertSpace":
        from search_spaces.bert.space import BertSpace

        return BertSpace
    raise AttributeError(name)
