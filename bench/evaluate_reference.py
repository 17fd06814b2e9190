#!/usr/bin/env python3
"""Python peer for the evaluation benchmark: times the independent reference implementation of
/work/shared/design/specs/metrics.md (tests/fixtures/evaluation/reference_metrics.py) on a
PanNuke-format fold.

Usage: python3 bench/evaluate_reference.py TRUE.npy PRED.npy TYPES.npy
  TRUE.npy  [N,H,W,6] instance masks, PRED.npy [N,H,W,>=5], TYPES.npy [N] tissue names.
Prints one JSON line: {"seconds": wall time of the evaluation only (loading excluded),
"images": N, "bPQ": ..., "mPQ": ...} (NaN printed as null)."""
import json
import math
import os
import sys
import time

import numpy as np

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "evaluation"))
import reference_metrics  # noqa: E402


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    true = np.load(argv[1], mmap_mode="r")
    pred = np.load(argv[2], mmap_mode="r")
    types = np.load(argv[3], mmap_mode="r")
    t0 = time.perf_counter()
    result = reference_metrics.pannuke(true, pred, types)
    seconds = time.perf_counter() - t0
    clean = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
    print(json.dumps({"seconds": seconds, "images": int(true.shape[0]),
                      "bPQ": clean(result["bPQ"]), "mPQ": clean(result["mPQ"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
