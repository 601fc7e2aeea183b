"""CPU vs GPU, side by side in one run, printed as one JSON document.

1. ``deeplabv3plus`` and ``randlanet``: supernet training steps per second (sandwich rule:
   largest + smallest + 2 random subnets per step, each forward + backward, one optimiser step)
   and subset-evaluation seconds per trial (extract a subnet, move it to the device, score it
   on the validation subset), on the CPU and, where torch sees a GPU, on it (float32, and with
   autocast); medians over the timed steps / the same seeded archs on every device, after one
   untimed warm-up (CUDA context, cuDNN autotuning). ``accuracy_gap`` is the largest
   |miou(GPU) - miou(CPU)| over those archs.
2. ``torch_cuda``: the ``torch-cuda`` profiler's coefficient of variation over ``--repeats``
   (10) measurements of each of 5 DeepLabV3+ subnets (issue target: < 2%).

On a machine without a GPU the CPU side is printed and every GPU entry says why it is absent.
Synthetic data (``paretonas data synth-voc`` / ``synth-scenes`` generators) in a temporary
folder and untrained supernets (speed does not depend on the weights; ``accuracy_gap`` then
compares near-random predictions, which flip more easily than trained ones); the CPU runs on
``--threads`` threads (default 1: this project's shared machine).
``--quick`` shrinks everything for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paretonas_core.compute import CPU, Compute, gpu_info  # noqa: E402
from search_spaces.base import Arch, ArchError, EvalContext  # noqa: E402
from search_spaces.deeplabv3plus.space import DeepLabSpace  # noqa: E402
from search_spaces.deeplabv3plus.synth import generate  # noqa: E402
from search_spaces.deeplabv3plus.training import AugmentedBatches, sandwich_step  # noqa: E402
from search_spaces.randlanet.space import RandLANetSpace  # noqa: E402
from search_spaces.randlanet.synthetic import write_dataset  # noqa: E402
from search_spaces.randlanet.train import sandwich_plan, train_steps  # noqa: E402

log = logging.getLogger("bench.gpu")

DEEPLAB = {"num_classes": 6, "width_mult": 0.5, "aspp_channels": 64, "low_level_channels": 16,
           "decoder_channels": 64, "resolutions": [96, 128], "subset_size": 32,
           "batch_size": 8, "data_dir": "voc"}
RANDLA = {"max_widths": [16, 64, 128], "num_points": [2048, 4096], "ratios": [4, 2],
          "ks": [8, 16], "num_classes": 6, "data": "scenes", "val_scenes": 4}


def sync(compute: Compute) -> None:
    if compute.is_cuda:
        torch.cuda.synchronize(compute.device)


def timed(fn: Callable[[], Any], compute: Compute) -> float:
    sync(compute)
    t0 = time.perf_counter()
    fn()
    sync(compute)
    return time.perf_counter() - t0


def computes() -> tuple[dict[str, Compute], str | None]:
    """The devices to compare, and why there is no GPU column (None when there is one)."""
    out = {"cpu": CPU}
    if not torch.cuda.is_available():
        return out, (f"no GPU: torch.cuda.is_available() is False (torch {torch.__version__}, "
                     f"built for CUDA {torch.version.cuda or 'none'})")
    out["cuda"] = Compute("cuda:0", amp=False)
    out["cuda_amp"] = Compute("cuda:0", amp=True)
    return out, None


def seeded_archs(space: Any, n: int, seed: int = 0) -> list[Arch]:
    rng = np.random.default_rng(seed)
    archs: list[Arch] = [space.smallest(), space.largest()]
    while len(archs) < n:
        try:
            archs.append(space.validate(space.sample(rng)))
        except ArchError:
            continue
    return archs[:n]


def ratios(per_device: dict[str, float | None], *, higher_is_better: bool) -> dict[str, float]:
    cpu = per_device.get("cpu")
    out = {}
    for name, value in per_device.items():
        if name != "cpu" and value and cpu:
            out[f"{name}_vs_cpu"] = round(value / cpu if higher_is_better else cpu / value, 2)
    return out


# --- DeepLabV3+ ---------------------------------------------------------------------------------
def deeplab_training(compute: Compute, steps: int) -> float:
    """Median steps/s of sandwich steps (batch 8 at 128 px) on ``compute``."""
    space = DeepLabSpace(DEEPLAB)
    net = compute.module(space.supernet).train()
    batches = AugmentedBatches(space.train.dataset, max(DEEPLAB["resolutions"]))
    rng = np.random.default_rng(0)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scaled = compute.steps()
    data = batches.epoch(8, rng)
    times = []
    for k in range(steps + 1):
        images, masks = next(data)

        def step(images=images, masks=masks) -> None:
            opt.zero_grad(set_to_none=True)
            sandwich_step(net, space, compute.to(images), compute.to(masks), rng,
                          num_random=2, distill=True, compute=compute, steps=scaled)
            scaled.step(opt)

        took = timed(step, compute)
        if k:  # the first step is the warm-up
            times.append(took)
    return 1.0 / statistics.median(times)


def evaluation(space: Any, metric: str, compute: Compute, archs: list[Arch]
               ) -> tuple[float, list[float]]:
    """Median seconds per trial (extract + move + score) and each arch's metric."""
    context = EvalContext(compute=compute)
    space.evaluate(archs[0], [metric], context=context)  # warm-up (caches, CUDA, cuDNN)
    times, values = [], []
    for arch in archs:
        out: dict[str, float] = {}

        def run(a: Arch = arch, into: dict[str, float] = out) -> None:
            into.update(space.evaluate(a, [metric], context=context))

        times.append(timed(run, compute))
        values.append(out[metric])
    return statistics.median(times), values


def compare(name: str, train: Callable[[Compute], float], space: Any, metric: str,
            archs: list[Arch], devices: dict[str, Compute]) -> dict[str, Any]:
    steps_s: dict[str, float | None] = {}
    eval_s: dict[str, float | None] = {}
    values: dict[str, list[float]] = {}
    for label, compute in devices.items():
        log.info("%s: training on %s", name, label)
        steps_s[label] = round(train(compute), 3)
        log.info("%s: evaluating on %s", name, label)
        seconds, values[label] = evaluation(space, metric, compute, archs)
        eval_s[label] = round(seconds, 4)
    gaps = {label: round(max(abs(a - b) for a, b in zip(v, values["cpu"], strict=True)), 4)
            for label, v in values.items() if label != "cpu"}
    return {
        "train_steps_per_s": steps_s, "train_speedup": ratios(steps_s, higher_is_better=True),
        "eval_s_per_trial": eval_s, "eval_speedup": ratios(eval_s, higher_is_better=False),
        f"{metric}_cpu": [round(v, 4) for v in values["cpu"]],
        "accuracy_gap": gaps, "archs": len(archs),
    }


# --- RandLA-Net ---------------------------------------------------------------------------------
def randla_training(compute: Compute, steps: int) -> float:
    space = RandLANetSpace(RANDLA)
    torch.manual_seed(0)
    scenes = space.train_scenes(4)
    plan = sandwich_plan(space, 2)
    train_steps(space.net, scenes, plan, steps=1, batch=4, lr=0.01, seed=0, compute=compute)
    took = timed(lambda: train_steps(space.net, scenes, plan, steps=steps, batch=4, lr=0.01,
                                     seed=1, compute=compute), compute)
    return steps / took


# --- torch-cuda latency stability ---------------------------------------------------------------
def cuda_latency_cv(repeats: int) -> dict[str, Any]:
    from evaluators.profilers.torch_cuda import TorchCudaProfiler

    space = DeepLabSpace(DEEPLAB)
    profiler = TorchCudaProfiler()
    rows = []
    for arch in seeded_archs(space, 5, seed=1):
        model, x = space.extract(arch), space.example_input(arch)
        lat = [profiler.measure(model, x).latency_ms for _ in range(repeats)]
        rows.append({"resolution": arch["resolution"],
                     "median_ms": round(statistics.median(lat), 4),
                     "cv": round(statistics.pstdev(lat) / statistics.mean(lat), 4)})
    cvs = [r["cv"] for r in rows]
    return {"settings": profiler.settings.model_dump(), "measurements": repeats,
            "subnets": rows, "median_cv": statistics.median(cvs), "max_cv": max(cvs),
            "gpu": gpu_info("cuda:0")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=5, help="timed training steps per device")
    p.add_argument("--trials", type=int, default=5, help="evaluated archs per space")
    p.add_argument("--repeats", type=int, default=10, help="torch-cuda measurements per subnet")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 steps, 2 archs")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.quick:
        args.steps, args.trials, args.repeats = 2, 2, 3
    torch.set_num_threads(args.threads)
    devices, absent = computes()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["PARETONAS_DATA_DIRS"] = str(root)
        generate(root / "voc", n_train=48, n_val=32, num_classes=6, min_size=128, max_size=160)
        write_dataset(root / "scenes", n_train=4, n_val=4, points=8192, seed=0)
        deeplab_space = DeepLabSpace(DEEPLAB)
        randla_space = RandLANetSpace(RANDLA)
        report: dict[str, Any] = {
            "machine": {"torch": torch.__version__, "cpu_threads": args.threads,
                        "gpu": None if absent else torch.cuda.get_device_name(0),
                        "gpu_absent": absent},
            "deeplabv3plus": compare(
                "deeplabv3plus", lambda c: deeplab_training(c, args.steps),
                deeplab_space, "miou", seeded_archs(deeplab_space, args.trials), devices),
            "randlanet": compare(
                "randlanet", lambda c: randla_training(c, args.steps), randla_space, "miou",
                seeded_archs(randla_space, args.trials), devices),
        }
        report["torch_cuda"] = ({"skipped": absent} if absent
                                else cuda_latency_cv(args.repeats))
        report["settings"] = {"deeplabv3plus": DEEPLAB, "randlanet": RANDLA,
                              "steps": args.steps, "trials": args.trials,
                              "train_batch": {"deeplabv3plus": 8, "randlanet": 4}}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
