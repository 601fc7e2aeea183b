"""Where torch work runs: the one place that knows about CUDA.

Supernet training, subset evaluation, BatchNorm recalibration and fine-tuning of every space take
a ``Compute`` (a resolved device plus mixed-precision and loading options) and move their models
and batches only through it. On the CPU every helper is the identity (``module`` returns the
model, ``to`` the tensor, ``autocast`` a null context, ``Steps`` plain ``backward``/``step``), so
CPU results are bit-for-bit those of the code before the device setting existed.

Which device: a study's ``compute.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``) and the
worker's ``PARETONAS_DEVICE`` (``paretonas worker --device``), combined by ``choose_device``
and checked against this machine by ``resolve_device`` (``auto`` = CUDA when torch sees a GPU,
else CPU; asking for CUDA where there is none is an error naming what is allowed here).

This module imports torch only inside functions: the API validates specs with it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

#: the worker's default device (``paretonas worker --device`` sets it for its processes)
DEVICE_ENV = "PARETONAS_DEVICE"
ALLOWED = "auto, cpu, cuda, cuda:N (N = GPU index)"
_SYNTAX = re.compile(r"^(auto|cpu|cuda(:[0-9]{1,3})?)$")


class ComputeError(ValueError):
    """A device that is malformed or absent on this machine; the message says what is allowed."""


def check_device(text: str, *, where: str = "device") -> str:
    """``text`` if it names a device this module understands (syntax only: the API server
    need not have the GPU its workers have), else ComputeError."""
    if not isinstance(text, str) or not _SYNTAX.match(text):
        raise ComputeError(f"{where}: {text!r} is not a compute device; allowed: {ALLOWED}")
    return text


def worker_device() -> str:
    """This process's default device: ``PARETONAS_DEVICE`` or ``auto``."""
    return check_device(os.environ.get(DEVICE_ENV) or "auto", where=DEVICE_ENV)


def choose_device(study: str | None, worker: str | None) -> str:
    """The device a study runs on at a worker (not yet checked against the machine).

    ``auto`` (or nothing) in the study defers to the worker; a study's bare ``cuda`` takes the
    worker's GPU when the worker names one (``cuda:1``: two workers share a two-GPU machine);
    ``cpu`` and ``cuda:N`` in the study win."""
    study = check_device(study or "auto", where="compute.device")
    worker = check_device(worker or "auto", where=DEVICE_ENV)
    if study == "auto":
        return worker
    if study == "cuda" and worker.startswith("cuda:"):
        return worker
    return study


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(requested: str, *, where: str = "compute.device") -> str:
    """``cpu`` or ``cuda:N`` on this machine; ComputeError when CUDA is asked for and absent."""
    import torch

    requested = check_device(requested, where=where)
    if requested == "cpu":
        return "cpu"
    available = torch.cuda.is_available()
    if requested == "auto":
        return f"cuda:{torch.cuda.current_device()}" if available else "cpu"
    if not available:
        raise ComputeError(
            f"{where}: {requested!r} asks for CUDA, but torch sees no GPU on this machine "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda or 'none'}, "
            "torch.cuda.is_available() is False); allowed here: auto, cpu"
        )
    count = torch.cuda.device_count()
    index = torch.cuda.current_device() if requested == "cuda" else int(requested[5:])
    if index >= count:
        raise ComputeError(f"{where}: {requested!r}: this machine has {count} GPU(s); allowed: "
                           f"auto, cpu, cuda, {', '.join(f'cuda:{i}' for i in range(count))}")
    return f"cuda:{index}"


class Steps:
    """``backward`` and optimiser ``step`` through a GradScaler when training in float16 (its
    gradients would underflow without loss scaling); plain calls otherwise."""

    def __init__(self, scaler: Any = None):
        self.scaler = scaler

    def backward(self, loss: Any) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: Any) -> None:
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
        self.scaler.update()


@dataclass(frozen=True)
class Compute:
    """A resolved device (``cpu`` or ``cuda:N``) and how to use it."""

    device: str = "cpu"
    #: autocast on CUDA (bfloat16 where the GPU has it, else float16 with loss scaling)
    amp: bool = True
    #: batches prepared ahead by a background thread (training data pipelines); 0: inline
    prefetch: int = 0

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def amp_dtype(self) -> Any:
        """The autocast dtype, or None (CPU, or amp off): the CPU path never autocasts."""
        if not (self.is_cuda and self.amp):
            return None
        import torch

        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def module(self, model: Any) -> Any:
        """``model`` on the device (moved in place, once: callers keep the returned model)."""
        return model.to(self.device) if self.is_cuda else model

    def to(self, value: Any) -> Any:
        """Tensors (or tuples/lists/dicts of them) on the device; from pinned memory without
        blocking the host on CUDA."""
        if not self.is_cuda:
            return value
        import torch

        if isinstance(value, torch.Tensor):
            if value.device.type == "cpu":
                value = value.pin_memory()
            return value.to(self.device, non_blocking=True)
        if isinstance(value, dict):
            return {k: self.to(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.to(v) for v in value)
        return value

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = self.amp_dtype
        if dtype is None:
            return contextlib.nullcontext()
        import torch

        return torch.autocast("cuda", dtype=dtype)

    def steps(self) -> Steps:
        """Backward/step helper for one training run (a fresh GradScaler when float16)."""
        import torch

        if self.amp_dtype is torch.float16:
            return Steps(torch.amp.GradScaler("cuda"))
        return Steps()

    def batches(self, items: Iterable[Any]) -> Iterator[Any]:
        """``items`` moved to the device. With ``prefetch`` > 0 a background thread produces
        (and on CUDA pins) the next ``prefetch`` items while the device works on this one; the
        order is unchanged. The producer must not share random state with the consumer."""
        if self.prefetch <= 0:
            for item in items:
                yield self.to(item)
            return
        yield from (self.to(item) for item in _prefetched(items, self.prefetch, self.is_cuda))

    def describe(self) -> dict[str, Any]:
        """For results and logs: the device, its GPU and the autocast dtype."""
        out: dict[str, Any] = {"device": self.device, "amp": None}
        dtype = self.amp_dtype
        if dtype is not None:
            out["amp"] = str(dtype).replace("torch.", "")
        if self.is_cuda:
            import torch

            out["gpu"] = torch.cuda.get_device_name(torch.device(self.device))
        return out


CPU = Compute()

_DONE = object()


def _prefetched(items: Iterable[Any], depth: int, pin: bool) -> Iterator[Any]:
    """Iterate ``items`` in a daemon thread, ``depth`` ahead (exceptions re-raised here)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if pin:
                    item = _pinned(item)
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="paretonas-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:  # the consumer stopped early (max steps): let the producer end
        stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                q.get_nowait()


def _pinned(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.pin_memory()
    if isinstance(value, list | tuple):
        return type(value)(_pinned(v) for v in value)
    return value


def resolve_compute(device: str | None = None, *, amp: bool = True, prefetch: int = 0,
                    worker: str | None = None, where: str = "compute.device") -> Compute:
    """A ``Compute`` for a study's settings at this worker (``worker``: default
    ``PARETONAS_DEVICE``); ComputeError when the device is absent here."""
    chosen = choose_device(device, worker if worker is not None else worker_device())
    return Compute(resolve_device(chosen, where=where), amp=amp, prefetch=prefetch)


def add_arguments(parser: Any) -> None:
    """``--device`` and ``--no-amp`` for the training commands."""
    parser.add_argument("--device", default=None,
                        help=f"where to train: {ALLOWED}; default {DEVICE_ENV}, else auto "
                             "(CUDA when torch sees a GPU, else CPU)")
    parser.add_argument("--no-amp", action="store_true",
                        help="no mixed precision on CUDA (float32 throughout)")


def from_arguments(args: Any) -> Compute:
    """The ``Compute`` of ``--device``/``--no-amp`` (ComputeError when absent here)."""
    return resolve_compute(args.device, amp=not args.no_amp, where="--device")


def compute_of(context: Any) -> Compute:
    """The ``Compute`` an ``EvalContext`` carries; the CPU when there is none."""
    compute = getattr(context, "compute", None)
    return compute if compute is not None else CPU


def gpu_info(device: str) -> dict[str, Any]:
    """Name, memory, driver and current/max clocks of a CUDA device, for measurement results
    (clocks and driver from NVML when the ``nvidia-ml-py`` package is installed)."""
    import torch

    dev = torch.device(device)
    props = torch.cuda.get_device_properties(dev)
    info: dict[str, Any] = {
        "gpu": props.name, "capability": f"{props.major}.{props.minor}",
        "memory_gb": round(props.total_memory / 2**30, 1),
        "multiprocessors": props.multi_processor_count,
        "torch_cuda": torch.version.cuda,
    }
    try:
        import pynvml  # nvidia-ml-py

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(dev.index or 0)
            clock = pynvml.NVML_CLOCK_SM
            info.update(
                driver=_text(pynvml.nvmlSystemGetDriverVersion()),
                sm_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, clock),
                sm_clock_max_mhz=pynvml.nvmlDeviceGetMaxClockInfo(handle, clock),
                memory_clock_mhz=pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_MEM),
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # no NVML (package or library): the result says so
        info["nvml"] = f"unavailable: {type(exc).__name__}"
    return info


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
