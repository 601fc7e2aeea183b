"""Build the small benchmark table the project ships (search_spaces/data/digits_mlp.csv).

Every row is a real measurement made here: an MLP trained with scikit-learn on the digits
dataset (bundled with scikit-learn) for each point of a small grid, its validation accuracy,
its parameter count and its median inference latency for a batch of 256 on one CPU thread.
Run: python bench/make_digits_table.py [--out PATH]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import statistics
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402

GRID = {
    "depth": [1, 2, 3],
    "width": [8, 16, 32, 64, 128],
    "activation": ["relu", "tanh", "logistic"],
    "alpha": [0.0001, 0.01],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="search_spaces/data/digits_mlp.csv")
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    batch = X_va[:256]
    rows = []
    for depth, width, act, alpha in itertools.product(*GRID.values()):
        clf = MLPClassifier(hidden_layer_sizes=(width,) * depth, activation=act, alpha=alpha,
                            max_iter=300, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_tr, y_tr)
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            clf.predict_proba(batch)
            times.append((time.perf_counter() - t0) * 1000)
        params = sum(w.size for w in clf.coefs_) + sum(b.size for b in clf.intercepts_)
        rows.append({"depth": depth, "width": width, "activation": act, "alpha": alpha,
                     "acc": round(float(np.mean(clf.predict(X_va) == y_va)), 5),
                     "latency_ms": round(statistics.median(times[3:]), 5), "params": params})
        print(rows[-1], flush=True)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
