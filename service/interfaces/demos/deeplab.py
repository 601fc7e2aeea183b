"""``make demo`` (FMAS flow): synthetic VOC data -> a small DeepLabV3+ supernet trained with the
sandwich rule (a few minutes on 2 cores, cached under ``.paretonas/deeplab-demo``) -> the service
(SQLite, local workers) runs a study of mIoU vs CPU and GAP8 latency with inherited weights, then
fine-tunes the Pareto candidates -> the front is printed and shown in the viewer.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from service.interfaces.demos.harness import finish, run_study, running_service

WORKDIR = Path(".paretonas")
DEMO_ROOT = WORKDIR / "deeplab-demo"


def demo_spec(options: dict[str, Any], *, trials: int) -> dict[str, Any]:
    return {
        "name": "demo: DeepLabV3+ subnets (inherited weights), mIoU vs CPU and GAP8 latency",
        "search_space": {"name": "deeplabv3plus",
                         "options": {**options, "subset_size": 24, "batch_size": 8}},
        "objectives": [{"metric": "miou", "direction": "maximize"},
                       {"metric": "latency_ms", "device": "cpu", "direction": "minimize"},
                       {"metric": "latency_ms", "device": "gap8", "direction": "minimize"}],
        "strategy": {"name": "nsga2", "options": {"population_size": 10}},
        "budget": {"trials": trials},
        "finetune": {"epochs": 2, "budget_seconds": 180},
        "seed": 0,
    }


def prepare_supernet() -> dict[str, Any]:
    """Dataset + trained supernet (cached), with a progress bar while training."""
    from tqdm import tqdm

    from search_spaces.deeplabv3plus import demo

    bar = tqdm(desc="training the demo supernet (cached afterwards)", unit="step", leave=False)

    def progress(step: int, total: int, loss: float) -> None:
        bar.total, bar.n = total, step
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        bar.refresh()

    try:
        return demo.prepare(DEMO_ROOT, progress=progress)
    finally:
        bar.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--keep-serving", action="store_true",
                        help="leave the server running for the viewer (Ctrl-C to stop)")
    args = parser.parse_args()
    DEMO_ROOT.mkdir(parents=True, exist_ok=True)
    setup = prepare_supernet()
    roots = [str(DEMO_ROOT.resolve())]
    if os.environ.get("PARETONAS_DATA_DIRS"):
        roots.append(os.environ["PARETONAS_DATA_DIRS"])
    env = {**os.environ,
           "PARETONAS_DATA_DIRS": os.pathsep.join(roots),
           "PARETONAS_DATABASE_URL": os.environ.get(
               "PARETONAS_DATABASE_URL", f"sqlite:///{WORKDIR.resolve() / 'deeplab-demo.db'}")}
    with running_service(env, port=args.port, workers=1) as client:
        study, front = run_study(client, demo_spec(setup["options"], trials=args.trials))
        print(f"Pareto front ({len(front)} trials; mIoU on a 24-image validation subset):")
        for t in sorted(front, key=lambda t: t["values"]["latency_ms@cpu"]):
            v = t["values"]
            ft = (t.get("info") or {}).get("finetune", {})
            tuned = (f"  fine-tuned from {ft['before']['miou']:.3f}"
                     if "before" in ft else "")
            print(f"  miou={v['miou']:.3f}  cpu={v['latency_ms@cpu']:.2f} ms  "
                  f"gap8={v['latency_ms@gap8']:.3f} ms{tuned}")
        return finish(client, study, keep_serving=args.keep_serving)


if __name__ == "__main__":
    sys.exit(main())
