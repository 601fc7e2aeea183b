"""``make demo-table``: start the service (SQLite, local workers), submit a real study of the
table space on the digits-MLP table the project ships (search_spaces/data/digits_mlp.csv), follow
it with a progress bar, print the front and the viewer URL. Seconds, where ``make demo`` (the
DeepLabV3+ flow, ``demos/deeplab.py``) takes minutes."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from service.interfaces.demos.harness import finish, run_study, running_service

DEMO_SPEC = {
    "name": "demo: digits MLPs, accuracy vs CPU latency",
    "search_space": {"name": "table", "options": {
        "path": "digits_mlp.csv", "params": ["depth", "width", "activation", "alpha"],
        "metrics": ["acc", "latency_ms", "params"]}},
    "objectives": [{"metric": "acc", "direction": "maximize"},
                   {"metric": "latency_ms", "direction": "minimize"}],
    "constraints": [{"metric": "params", "max": 20000}],
    "strategy": {"name": "nsga2", "options": {"population_size": 10}},
    "budget": {"trials": 60},
    "seed": 0,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--keep-serving", action="store_true",
                        help="leave the server running for the viewer (Ctrl-C to stop)")
    args = parser.parse_args()
    workdir = Path(".paretonas")
    workdir.mkdir(exist_ok=True)
    env = {**os.environ,
           "PARETONAS_DATABASE_URL": os.environ.get(
               "PARETONAS_DATABASE_URL", f"sqlite:///{workdir.resolve() / 'demo.db'}")}
    with running_service(env, port=args.port, workers=2) as client:
        study, front = run_study(client, DEMO_SPEC)
        print(f"Pareto front ({len(front)} trials):")
        for t in sorted(front, key=lambda t: t["values"]["latency_ms"]):
            print(f"  acc={t['values']['acc']:.4f}  latency_ms={t['values']['latency_ms']:.4f}"
                  f"  {t['arch']}")
        return finish(client, study, keep_serving=args.keep_serving)


if __name__ == "__main__":
    sys.exit(main())
