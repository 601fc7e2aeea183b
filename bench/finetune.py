"""Benchmark of fine-tuning on training sets pruned by success rate (the seeds' automatic dataset
pruning), for BERT (real pretrained MiniLM-L6-H384) on the stdlib-topics task and DeepLabV3+ (the
demo supernet, ``search_spaces.deeplabv3plus.demo``) on the synthetic VOC set.

For each model one subnet (a mid-size arch) is:

1. probed: fine-tuned for ``probe_epochs`` on the whole training set while each example's
   correctness is recorded (an image is correct when its pixel accuracy is >= the threshold);
2. fine-tuned from its inherited weights on the whole set and on each candidate subset derived
   from the success rates (``service.engine.data_pruning``), the same epochs and seed each time;
3. scored out of sample: BERT on the task's dev split, DeepLabV3+ on its full validation split.

Prints one JSON object: per model the subset sizes, the accuracy and fine-tuning seconds on each
subset, on the full set and on a random subset of the winning ticket's size (the baseline the
success-rate selection must beat), the winning ticket's (largest subset's) size ratio, accuracy
delta and time saved, the last both without and with the probe's cost (the probe is paid once
per study, shared by every finalist: figures for 1 and 8 finalists; timings exclude model
loading). Each figure is one fine-tuning run per seed; with ``--full`` (3 seeds) the medians
over seeds. Run: ``python bench/finetune.py [--full]``.
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
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from search_spaces.base import Arch, EvalContext, SearchSpace  # noqa: E402
from service.engine.data_pruning import derive_subsets, summary  # noqa: E402


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def run_model(space: SearchSpace, arch: Arch, metric: str, *, epochs: int, probe_epochs: int,
              seeds: int, threshold: float, max_subsets: int, finalists: int = 8,
              score: Any = None) -> dict[str, Any]:
    """Probe, derive subsets, fine-tune on the full set and on each subset; ``score(details,
    values)`` picks the out-of-sample figure (default ``values[metric]``)."""
    score = score or (lambda details, values: values[metric])
    before = score({}, space.evaluate(arch, [metric]))  # also loads the model and data
    t0 = time.perf_counter()
    _, probe = space.finetune(arch, [metric], epochs=probe_epochs, record_success=True,
                              score_threshold=threshold, context=EvalContext(seed=0))
    probe_s = time.perf_counter() - t0
    rates = probe["success_rate"]
    subsets = derive_subsets(rates)[:max_subsets]

    def tune(examples: list[int] | None) -> dict[str, float]:
        accs, secs = [], []
        for seed in range(seeds):
            t = time.perf_counter()
            values, details = space.finetune(arch, [metric], epochs=epochs, examples=examples,
                                             context=EvalContext(seed=seed))
            secs.append(time.perf_counter() - t)
            accs.append(score(details, values))
        return {"accuracy": round(median(accs), 4), "seconds": round(median(secs), 2)}

    full = tune(None)
    rows = []
    for s in subsets:
        rows.append({**summary([s], len(rates))[0], **tune(s["indices"])})
    out: dict[str, Any] = {
        "train_set_size": len(rates), "accuracy_before_finetuning": round(before, 4),
        "probe": {"epochs": probe_epochs, "seconds": round(probe_s, 2),
                  "success_histogram": {str(v): int(c) for v, c in zip(
                      *np.unique(np.asarray(rates), return_counts=True), strict=True)}},
        "full_set": full, "subsets": rows,
    }
    if rows:
        wt = rows[0]
        # the baseline the selection must beat: a random subset of the winning ticket's size
        pick = np.random.default_rng(0).permutation(len(rates))[:wt["size"]]
        out["random_subset_same_size"] = {"size": wt["size"],
                                          **tune(sorted(int(i) for i in pick))}
        out["winning_ticket"] = {
            "size": wt["size"], "size_ratio": round(len(rates) / wt["size"], 2),
            "accuracy_delta": round(wt["accuracy"] - full["accuracy"], 4),
            "accuracy_delta_vs_random_same_size": round(
                wt["accuracy"] - out["random_subset_same_size"]["accuracy"], 4),
            "time_saved": round(1 - wt["seconds"] / full["seconds"], 3),
            "time_saved_with_probe_one_finalist": round(
                1 - (wt["seconds"] + probe_s) / full["seconds"], 3),
            f"time_saved_with_probe_{finalists}_finalists": round(
                1 - (finalists * wt["seconds"] + probe_s) / (finalists * full["seconds"]), 3),
        }
    else:
        out["winning_ticket"] = None  # every example was correct in every probe epoch
    return out


def bench_bert(args: argparse.Namespace) -> dict[str, Any]:
    from search_spaces.bert.corpus import write_stdlib_topic_task
    from search_spaces.bert.space import BertSpace

    tmp = Path(tempfile.mkdtemp(prefix="bench-finetune-bert-"))
    os.environ["PARETONAS_DATA_DIRS"] = str(tmp)
    os.environ.setdefault("PARETONAS_CACHE_DIR", str(tmp / "cache"))
    counts = write_stdlib_topic_task(tmp / "topics")
    space = BertSpace({"seq_len": 32, "num_texts": 16, "importance_examples": 32,
                       "task": "topics", "max_train_examples": args.bert_train,
                       "max_eval_examples": args.bert_dev, "reorder": False})
    n = space.cfg.num_layers
    arch = space.validate({"layers": 4, **{f"heads_{i}": 6 for i in range(n)},
                           **{f"ffn_{i}": 768 for i in range(n)}})
    res = run_model(space, arch, "accuracy", epochs=args.epochs, probe_epochs=args.probe_epochs,
                    seeds=args.seeds, threshold=0.9, max_subsets=args.max_subsets)
    return {"model": "MiniLM-L6-H384 subnet: 4 layers, 6 heads, ffn 768",
            "task": "stdlib-topics (5 labels)",
            "train_rows": min(counts["train"], args.bert_train),
            "dev_rows": min(counts["dev"], args.bert_dev),
            "metric": "accuracy on the dev split (out of sample)", **res}


def bench_deeplab(args: argparse.Namespace) -> dict[str, Any]:
    from search_spaces.deeplabv3plus import demo
    from search_spaces.deeplabv3plus.space import DeepLabSpace

    root = Path(args.workdir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ["PARETONAS_DATA_DIRS"] = str(root)
    setup = demo.prepare(root)  # the demo supernet (shared cache with bench/deeplab.py)
    space = DeepLabSpace({**setup["options"], "subset_size": 24, "batch_size": 8})
    arch = space.sample(np.random.default_rng(7))
    res = run_model(space, arch, "miou", epochs=args.epochs, probe_epochs=args.probe_epochs,
                    seeds=args.seeds, threshold=args.pixel_threshold,
                    max_subsets=args.max_subsets,
                    score=lambda d, v: d.get("miou_full_val_after", v["miou"]))
    return {"model": "DeepLabV3+ demo supernet subnet", "arch": dict(arch),
            "supernet_epochs": setup.get("train_config", {}).get("epochs"),
            "metric": "mIoU on the full validation split (out of sample)",
            "pixel_threshold": args.pixel_threshold, **res}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true",
                    help="bigger figures: more training rows, epochs and seeds (tens of minutes)")
    ap.add_argument("--workdir", default=".paretonas/deeplab-demo",
                    help="cache of the synthetic VOC set and the demo supernet")
    ap.add_argument("--only", choices=["bert", "deeplab"], default=None)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    torch.set_num_threads(1)
    big = args.full
    args.epochs, args.probe_epochs = (3, 2) if big else (2, 2)
    args.seeds = 3 if big else 1
    args.max_subsets = 4 if big else 2
    args.bert_train, args.bert_dev = (1000, 400) if big else (240, 120)
    args.pixel_threshold = 0.8
    result: dict[str, Any] = {"threads": 1, "epochs": args.epochs, "seeds": args.seeds,
                              "full": big}
    t0 = time.perf_counter()
    if args.only in (None, "bert"):
        result["bert"] = bench_bert(args)
    if args.only in (None, "deeplab"):
        result["deeplab"] = bench_deeplab(args)
    result["bench_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
