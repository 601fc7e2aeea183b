"""Export a subnet to ONNX (TorchScript exporter, ``dynamo=False``), shared by the ONNX Runtime
profiler and the GVSOC hook."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from evaluators.profilers.base import ProfilerError
from evaluators.profilers.timing import split_input

OPSET = 17


def input_feed(example_input: Any) -> dict[str, Any]:
    """Name -> numpy array for the exported graph's inputs (``input_0``... or the dict keys)."""
    import torch

    args, kwargs = split_input(example_input)
    named = kwargs if kwargs else {f"input_{i}": a for i, a in enumerate(args)}
    feed = {}
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise ProfilerError(f"ONNX export: input {name!r} is not a tensor")
        feed[name] = value.detach().cpu().numpy()
    return feed


def export_onnx(model: Any, example_input: Any, path: Path | None = None) -> bytes:
    """The ONNX bytes of ``model`` traced on ``example_input`` (also written to ``path``)."""
    import torch

    args, kwargs = split_input(example_input)
    names = list(kwargs) if kwargs else [f"input_{i}" for i in range(len(args))]
    was_training = [(m, m.training) for m in model.modules()]
    buf = io.BytesIO()
    try:
        model.eval()
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter is deprecated upstream but is the one the issue asks for:
            # it needs no torch.export-compatible model and is what NNTool flows are used to
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                args,
                buf,
                kwargs=kwargs or None,
                dynamo=False,
                input_names=names,
                output_names=["output"],
                opset_version=OPSET,
            )
    except Exception as exc:
        raise ProfilerError(f"ONNX export failed: {exc}") from exc
    finally:
        for module, training in was_training:
            module.training = training
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data
