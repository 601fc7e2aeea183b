"""Turn any ``nn.Module`` + example input into the list of layers an int8 deployment would run.

The model is run once under a ``TorchDispatchMode`` that sees every ATen op, so functional ops
(residual adds, attention matmuls, pooling in ``forward``) are seen as well as modules. Ops a
deployment fuses into the preceding layer (batch norm, activations, views, dropout) are folded:
their output is the same *logical* tensor as their input. Compute ops (convolutions, matmuls,
pooling, normalisation, softmax, gathers), resampling (bilinear/nearest resize: a real kernel on
GAP8, not a view) and ops combining two activations (add, mul; cat as ``concat``) become layers,
each with the innermost module it ran in (``detail["module"]``, for per-part shares). Tensor
lifetimes over the layer sequence give the peak activation memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from evaluators.profilers.base import ProfilerError
from evaluators.profilers.timing import call_model

_CONV = {"convolution", "_convolution", "conv2d", "conv1d", "cudnn_convolution"}
_MM = {"mm", "addmm", "bmm", "baddbmm", "linear", "matmul"}
_POOL = {
    "avg_pool2d", "max_pool2d", "max_pool2d_with_indices", "adaptive_avg_pool2d",
    "_adaptive_avg_pool2d", "adaptive_max_pool2d", "mean", "avg_pool1d", "max_pool1d",
}
_NORM = {"native_layer_norm", "_softmax", "softmax", "_log_softmax", "native_group_norm"}
_GATHER = {"embedding", "index_select", "gather"}
#: resampling is real work on GAP8 (the AutoTiler runs a resize kernel), not a fused view
_RESIZE = {
    "upsample_bilinear2d", "upsample_nearest2d", "_upsample_bilinear2d_aa", "upsample_bicubic2d",
    "_upsample_nearest_exact2d", "grid_sampler_2d",
}
_CONCAT = {"cat", "concat", "stack"}


@dataclass
class Layer:
    """One deployed layer. Byte counts are at int8 (one byte per element, int32 biases)."""

    index: int
    op: str
    kind: str  # conv|pointwise|depthwise|linear|matmul|pool|eltwise|concat|resize|norm|gather
    macs: int
    in_bytes: int
    out_bytes: int
    weight_bytes: int  # parameter bytes this layer reads (a gather reads only its rows)
    param_bytes: int = 0  # parameter bytes it stores, counted once per tensor (shared weights)
    out_shape: tuple[int, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_shape"] = list(self.out_shape)
        return d


@dataclass
class Graph:
    layers: list[Layer]
    params_bytes: int
    peak_activation_bytes: int
    input_bytes: int

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


def _numel(shape: Any) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _tensors(obj: Any) -> list[Any]:
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, list | tuple):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _groups(name: str, args: tuple) -> int:
    """``groups`` of a convolution op: conv2d/conv1d take it 7th, convolution 9th."""
    idx = 6 if name in ("conv2d", "conv1d") else 8
    return int(args[idx]) if len(args) > idx else 1


def _ptr(t: Any) -> int:
    return int(t.untyped_storage().data_ptr())


class _Walker:
    def __init__(self, weight_ptrs: set[int]):
        self.weight_ptrs = weight_ptrs
        self.logical: dict[int, int] = {}  # storage ptr -> logical tensor id
        self.size: dict[int, int] = {}  # logical id -> bytes
        self.defined: dict[int, int] = {}  # logical id -> layer index that wrote it (-1: input)
        self.last_use: dict[int, int] = {}
        self.layers: list[Layer] = []
        self.seen_weights: set[int] = set()  # weight storages already counted in params
        self.scope: list[str] = []  # names of the modules whose forward is running

    def _acts(self, args: Any) -> list[Any]:
        return [
            t for t in _tensors(args) if t.numel() > 1 and _ptr(t) not in self.weight_ptrs
        ]

    def _lid(self, t: Any) -> int:
        p = _ptr(t)
        if p not in self.logical:  # a model input (or a tensor made outside any op)
            lid = len(self.size)
            self.logical[p], self.size[lid], self.defined[lid] = lid, t.numel(), -1
        return self.logical[p]

    def op(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        acts = self._acts((args, kwargs))
        outs = [t for t in _tensors(out) if t.numel() > 0]
        if not outs:
            return
        kind = self._kind(name, args, acts)
        if kind is None:  # fused into its producer: same logical tensor
            if acts:
                lid = self._lid(acts[0])
                for t in outs[:1]:
                    self.logical[_ptr(t)] = lid
            return
        in_ids = list(dict.fromkeys(self._lid(t) for t in acts))
        index = len(self.layers)
        for lid in in_ids:
            self.last_use[lid] = index
        main = outs[0]
        lid = len(self.size)
        self.logical[_ptr(main)] = lid
        self.size[lid], self.defined[lid], self.last_use[lid] = main.numel(), index, index
        self.layers.append(self._layer(index, name, kind, args, acts, main, in_ids))

    def _kind(self, name: str, args: tuple, acts: list[Any]) -> str | None:
        if name in _CONV:
            w, groups = args[1], _groups(name, args)
            if groups > 1 and groups == int(args[0].shape[1]):
                return "depthwise"
            return "pointwise" if _numel(w.shape[2:]) == 1 and groups == 1 else "conv"
        if name in _MM:
            weights = [t for t in _tensors(args) if _ptr(t) in self.weight_ptrs and t.dim() == 2]
            return "linear" if weights else "matmul"
        if name in _POOL:
            return "pool"
        if name in _NORM:
            return "norm"
        if name in _GATHER:
            return "gather"
        if name in _RESIZE:
            return "resize"
        if name in _CONCAT and len({_ptr(t) for t in acts}) >= 2:
            return "concat"
        if len({_ptr(t) for t in acts}) >= 2:
            return "eltwise"
        return None

    def _layer(
        self, index: int, name: str, kind: str, args: tuple, acts: list, out: Any, in_ids: list
    ) -> Layer:
        out_n = out.numel()
        weights = [t for t in _tensors(args) if _ptr(t) in self.weight_ptrs]
        in_bytes = sum(self.size[i] for i in in_ids)
        detail: dict[str, Any] = {}
        if kind in ("conv", "pointwise", "depthwise"):
            w, groups = args[1], _groups(name, args)
            macs = out_n * _numel(w.shape[1:])
            # int8 weights + an int32 bias per output channel (batch norm folded into it)
            weight_bytes = w.numel() + 4 * int(w.shape[0])
            detail = {
                "kernel": list(w.shape[2:]),
                "groups": groups,
                "cin": int(w.shape[1]) * groups,
                "cout": int(w.shape[0]),
            }
        elif kind in ("linear", "matmul"):
            # the reduced dim is the last one of the first matrix operand (addmm's bias is 1-D)
            a = [t for t in _tensors(args) if t.dim() >= 2]
            k = int(a[0].shape[-1]) if a else 1
            macs = out_n * k
            w2 = [t for t in weights if t.dim() == 2]
            weight_bytes = sum(t.numel() for t in w2) + 4 * sum(
                t.numel() for t in weights if t.dim() == 1
            )
            detail = {"k": k}
        else:
            macs = 0
            weight_bytes = sum(t.numel() for t in weights)
            detail = {"ops": max(in_bytes, out_n)}
        if self.scope:
            detail["module"] = self.scope[-1]
        stored = weight_bytes
        if kind == "gather":  # an embedding lookup reads one row per token, stores the table
            weight_bytes = min(weight_bytes, out_n)
        new = {_ptr(t) for t in weights} - self.seen_weights
        self.seen_weights |= new
        return Layer(index, name, kind, macs, in_bytes, out_n, weight_bytes,
                     stored if new or not weights else 0,
                     tuple(int(s) for s in out.shape), detail)

    def peak_activation_bytes(self, n_layers: int) -> int:
        peak = 0
        for i in range(max(n_layers, 1)):
            live = sum(
                size for lid, size in self.size.items()
                if self.defined[lid] <= i <= self.last_use.get(lid, self.defined[lid])
            )
            peak = max(peak, live)
        return peak


def walk(model: Any, example_input: Any) -> Graph:
    """Run ``model`` once (eval, inference mode) and return its deployed layers."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    weight_ptrs = {_ptr(p) for p in model.parameters()} | {_ptr(b) for b in model.buffers()}
    walker = _Walker(weight_ptrs)

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            walker.op(func._schema.name.split("::")[-1], args, kwargs, out)
            return out

    modes = [(m, m.training) for m in model.modules()]
    hooks = []

    def enter(name: str) -> Any:
        def hook(_module: Any, _args: Any) -> None:
            walker.scope.append(name)
        return hook

    def leave(_module: Any, _args: Any, _out: Any) -> None:
        walker.scope.pop()

    for name, module in model.named_modules():
        if name:  # each layer records the innermost module it ran in (for per-part shares)
            hooks.append(module.register_forward_pre_hook(enter(name)))
            hooks.append(module.register_forward_hook(leave))
    try:
        model.eval()
        with torch.inference_mode():
            inputs = [t for t in _tensors(example_input)]
            for t in inputs:
                walker._lid(t)
            with Recorder():
                out = call_model(model, example_input)
    except ProfilerError:
        raise
    except Exception as exc:
        raise ProfilerError(f"gap8: the model failed on its input: {exc}") from exc
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes:
            module.training = training
    end = len(walker.layers)
    for t in _tensors(out):  # outputs stay live to the end
        p = _ptr(t)
        if p in walker.logical:
            walker.last_use[walker.logical[p]] = end
    # the int8 params a deployment stores: what the layers read as weights, each tensor once
    params_bytes = sum(layer.param_bytes for layer in walker.layers)
    return Graph(
        layers=walker.layers,
        params_bytes=params_bytes,
        peak_activation_bytes=walker.peak_activation_bytes(end),
        input_bytes=sum(t.numel() for t in inputs),
    )
