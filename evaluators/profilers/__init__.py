"""Device profilers: registry of profiler kinds (built-ins lazily imported, plus entry points)."""

from __future__ import annotations

from paretonas_core.registry import Registry

PROFILERS: Registry = Registry("profiler", "paretonas.profilers")
# Built-ins, imported lazily (listing kinds must not import torch or onnxruntime).
PROFILERS.register("torch-cpu", "evaluators.profilers.torch_cpu:TorchCpuProfiler")
PROFILERS.register(
    "onnxruntime-cpu", "evaluators.profilers.onnxruntime_cpu:OnnxRuntimeCpuProfiler"
)
PROFILERS.register("gap8", "evaluators.profilers.gap8.profiler:Gap8Profiler")
PROFILERS.register(
    "torch-cpu-table", "evaluators.profilers.torch_cpu_table:TorchCpuTableProfiler"
)
PROFILERS.register("torch-cuda", "evaluators.profilers.torch_cuda:TorchCudaProfiler")
