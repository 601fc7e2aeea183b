"""Everything ``BertSpace`` loads on first use: the supernet with its weights (and classifier),
the tokenizer, tokenised evaluation data, the importance permutation and the full model's
reference embeddings."""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
import time
from typing import TYPE_CHECKING

import torch

from paretonas_core.compute import CPU, Compute
from search_spaces.base import SpaceError
from search_spaces.bert.checkpoint import default_cache_dir, load_weights
from search_spaces.bert.corpus import stdlib_sentences
from search_spaces.bert.data import BertTokenizer, Text, label_indices
from search_spaces.bert.evaluation import accuracy, batched, fit_head, mean_cosine
from search_spaces.bert.importance import (
    Permutation,
    apply_permutation,
    importance_scores,
    permutation_from_scores,
)
from search_spaces.bert.model import BertNet, BertShape

if TYPE_CHECKING:
    from search_spaces.bert.space import BertSpace

log = logging.getLogger(__name__)
#: bump when the importance method changes so old cached permutations are not reused
IMPORTANCE_VERSION = "1"

_KEY_MAP = {
    "embeddings.word_embeddings": "word_embeddings",
    "embeddings.position_embeddings": "position_embeddings",
    "embeddings.token_type_embeddings": "token_type_embeddings",
    "embeddings.LayerNorm": "embed_norm",
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attn_out",
    "attention.output.LayerNorm": "attn_norm",
    "intermediate.dense": "ffn_in",
    "output.dense": "ffn_out",
    "output.LayerNorm": "ffn_norm",
    "pooler.dense": "pooler",
    "classifier": "classifier",
}


def _our_key(hf_key: str) -> str:
    """``encoder.layer.3.attention.self.query.weight`` -> ``layers.3.query.weight``."""
    prefix = ""
    if hf_key.startswith("encoder.layer."):
        idx, rest = hf_key[len("encoder.layer."):].split(".", 1)
        prefix, hf_key = f"layers.{idx}.", rest
    module, _, param = hf_key.rpartition(".")
    return prefix + _KEY_MAP[module] + "." + param


def _batches(tok: BertTokenizer, texts: list[Text], size: int) -> list[torch.Tensor]:
    return [tok(texts[i:i + size]) for i in range(0, len(texts), size)]


class BertRuntime:
    """Loaded state of one ``BertSpace`` (see module docstring)."""

    def __init__(self, space: BertSpace):
        t0 = time.perf_counter()
        self.space, o, cfg = space, space.options, space.cfg
        self.tok = BertTokenizer(space.files, o.seq_len, cfg.pad_token_id)
        state = load_weights(space.files, cfg)
        task = space.task
        from_ckpt = task is not None and task.from_checkpoint
        if from_ckpt and "classifier.weight" not in state:
            raise SpaceError(f"head: {space.files.label} has no classifier/pooler weights; "
                             "use head='train'")
        if from_ckpt and state["classifier.weight"].shape[0] != task.num_labels:
            raise SpaceError(f"checkpoint: classifier has {state['classifier.weight'].shape[0]}"
                             f" outputs but config.json id2label names {task.num_labels}")
        self.net = BertNet(cfg, BertShape.full(cfg), sep_id=self.tok.sep_id,
                           pooling="pooler" if from_ckpt else "mean",
                           num_labels=task.num_labels if task is not None else 0)
        wanted = {k: v for k, v in state.items()
                  if from_ckpt or not k.startswith(("pooler.", "classifier."))}
        missing, _ = self.net.load_state_dict({_our_key(k): v for k, v in wanted.items()},
                                              strict=False)
        if task is not None and not from_ckpt:
            missing = [k for k in missing if not k.startswith("classifier.")]
        if missing:  # every encoder tensor was checked by load_weights; this is a bug guard
            raise SpaceError(f"checkpoint: {space.files.label} lacks {missing[:3]}")
        self.net.eval().requires_grad_(False)
        self._references: dict[str, torch.Tensor] = {}  # by device
        self._device_nets: dict[str, BertNet] = {}  # copies of ``net`` on GPUs
        self._device_lock = threading.Lock()
        self.fidelity_batches = _batches(self.tok, self._fidelity_texts(), o.eval_batch_size)
        if task is not None and not from_ckpt:
            self._fit_head()
        self.dev_batches = (
            _batches(self.tok, task.dev.texts, o.eval_batch_size) if task is not None else []
        )
        self.example_ids = self.tok.fixed_length(" ".join(stdlib_sentences(40)))
        self.reordered = False
        self.permutation: Permutation | None = None
        if o.reorder:
            self.reorder()
        log.info("bert: loaded %s in %.1fs", space.files.label, time.perf_counter() - t0)

    # --- data --------------------------------------------------------------------------------
    def _fidelity_texts(self) -> list[Text]:
        o = self.space.options
        path = self.space.texts_path
        if path is None:
            texts = stdlib_sentences(o.num_texts)
        else:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise SpaceError(f"texts: cannot read {path.name}: {exc}") from exc
            texts = [ln.strip() for ln in lines if ln.strip()][: o.num_texts]
        if len(texts) < 2:
            raise SpaceError(f"texts: need at least 2 non-empty lines, got {len(texts)}")
        return texts  # type: ignore[return-value]

    def _fit_head(self) -> None:
        task = self.space.task
        assert task is not None and task.train is not None
        targets = label_indices(task.train, task.labels, source="the train split")
        feats = batched(self.net.embed, _batches(self.tok, task.train.texts,
                                                 self.space.options.eval_batch_size))
        w, b = fit_head(feats, targets, task.num_labels)
        with torch.no_grad():
            self.net.classifier.weight.copy_(w)
            self.net.classifier.bias.copy_(b)

    # --- importance --------------------------------------------------------------------------
    def _importance_inputs(self) -> tuple[list[torch.Tensor], list[torch.Tensor] | None, str]:
        o, task = self.space.options, self.space.task
        n, size = o.importance_examples, o.eval_batch_size
        if task is not None and task.train is not None:
            texts = task.train.texts[:n]
            targets = label_indices(task.train, task.labels, source="the train split")[:n]
            batches = _batches(self.tok, texts, size)
            labels = [targets[i:i + size] for i in range(0, len(texts), size)]
            return batches, labels, json.dumps([texts, targets.tolist()])
        texts = self._fidelity_texts()[:n]
        return _batches(self.tok, texts, size), None, json.dumps(texts)

    def reorder(self) -> None:
        """Apply the (cached) importance permutation once; later calls do nothing."""
        if self.reordered:
            return
        batches, labels, content = self._importance_inputs()
        key = hashlib.sha256(
            "|".join([IMPORTANCE_VERSION, self.space.files.fingerprint(),
                      str(self.space.options.seq_len), content]).encode()
        ).hexdigest()[:24]
        path = default_cache_dir() / "bert" / f"importance-{key}.json"
        perm = None
        if path.is_file():
            try:
                perm = Permutation.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError):
                perm = None
            if perm is not None and not perm.is_valid_for(self.net):
                perm = None
        if perm is None:
            t0 = time.perf_counter()
            with torch.enable_grad():
                scores = importance_scores(self.net, batches, labels=labels)
            perm = permutation_from_scores(scores)
            log.info("bert: importance computed in %.1fs", time.perf_counter() - t0)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(perm.to_json()))
                tmp.replace(path)  # atomic: concurrent workers never read half a file
            except OSError as exc:  # a read-only cache only costs recomputation
                log.warning("bert: cannot cache importance at %s: %s", path, exc)
        apply_permutation(self.net, perm)
        self.permutation, self.reordered = perm, True
        with self._device_lock:  # copies made before the reordering are stale
            self._device_nets.clear()
            self._references.clear()

    # --- metrics -----------------------------------------------------------------------------
    def net_on(self, compute: Compute = CPU) -> BertNet:
        """The supernet on ``compute``'s device: ``net`` itself on the CPU (extraction and the
        CPU profilers use it), else a copy moved there once per device."""
        if not compute.is_cuda:
            return self.net
        with self._device_lock:
            net = self._device_nets.get(compute.device)
            if net is None:
                net = compute.module(copy.deepcopy(self.net))
                self._device_nets[compute.device] = net
            return net

    def reference(self, compute: Compute = CPU) -> torch.Tensor:
        """The full model's embeddings of the fidelity texts (computed once per device, so a
        subnet is compared with the full model run the same way)."""
        key = compute.device
        if key not in self._references:
            self._references[key] = batched(self.net_on(compute).embed, self.fidelity_batches,
                                            compute)
        return self._references[key]

    def fidelity(self, shape: BertShape | None = None, *, model: BertNet | None = None,
                 compute: Compute = CPU) -> float:
        """Of the supernet run at ``shape``, or of a standalone ``model`` (fine-tuned; on
        ``compute``'s device)."""
        net = self.net_on(compute)
        embed = model.embed if model is not None else (lambda ids: net.embed(ids, shape))
        return mean_cosine(batched(embed, self.fidelity_batches, compute),
                           self.reference(compute))

    def accuracy(self, shape: BertShape | None = None, *, model: BertNet | None = None,
                 compute: Compute = CPU) -> float:
        task = self.space.task
        assert task is not None
        net = self.net_on(compute)
        run = model if model is not None else (lambda ids: net(ids, shape))
        return accuracy(batched(run, self.dev_batches, compute), task.dev_targets)
