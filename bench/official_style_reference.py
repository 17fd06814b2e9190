#!/usr/bin/env python3
"""Benchmark peer: the PanNuke/HoVer-Net evaluation written the straightforward way the public
scripts are structured (per-instance boolean masks for every IoU, a relabelling loop for binarize,
masks for centroids, scipy cdist + linear_sum_assignment for the pairing). Written here from
../shared/design/specs/metrics.md to time that structure; it is not the official code.
Usage: python3 bench/official_style_reference.py TRUE.npy PRED.npy TYPES.npy [MAX_IMAGES]
Prints one JSON line {"seconds", "images", "bPQ", "mPQ"} (evaluation time only; NaN as null)."""
import json, math, sys, time
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

TISSUES = ["Adrenal_gland", "Bile-duct", "Bladder", "Breast", "Cervix", "Colon", "Esophagus", "HeadNeck", "Kidney",
           "Liver", "Lung", "Ovarian", "Pancreatic", "Prostate", "Skin", "Stomach", "Testis", "Thyroid", "Uterus"]

def pq(true, pred):
    true_ids = [i for i in np.unique(true) if i != 0]
    pred_ids = [i for i in np.unique(pred) if i != 0]
    if not true_ids and not pred_ids:
        return float("nan")
    true_masks = {i: true == i for i in true_ids}
    pred_masks = {i: pred == i for i in pred_ids}
    ious = []
    for t in true_ids:
        for p in np.unique(pred[true_masks[t]]):
            if p == 0:
                continue
            inter = np.logical_and(true_masks[t], pred_masks[p]).sum()
            union = np.logical_or(true_masks[t], pred_masks[p]).sum()
            iou = inter / union
            if iou > 0.5:
                ious.append(iou)
    tp = len(ious); fp = len(pred_ids) - tp; fn = len(true_ids) - tp
    dq = tp / (tp + 0.5 * fp + 0.5 * fn)
    sq = sum(ious) / (tp + 1e-6)
    return dq * sq

def binarize(x):
    out = np.zeros(x.shape[:2], dtype=np.int32); cnt = 1
    for ch in range(5):
        for v in np.unique(x[..., ch]):
            if v == 0:
                continue
            out[x[..., ch] == v] = cnt; cnt += 1
    return out

def points(x):
    pts = []
    for ch in range(5):
        for v in np.unique(x[..., ch]):
            if v == 0:
                continue
            ys, xs = np.nonzero(x[..., ch] == v)
            pts.append((xs.mean(), ys.mean(), ch + 1))
    return np.array(pts, dtype=np.float64).reshape(-1, 3) if pts else np.array([[0.0, 0.0, 0.0]])

def nanmean(xs):
    xs = [v for v in xs if not math.isnan(v)]
    return sum(xs) / len(xs) if xs else float("nan")

def main(argv):
    true = np.load(argv[1], mmap_mode="r"); pred = np.load(argv[2], mmap_mode="r"); types = np.load(argv[3])
    n = true.shape[0] if len(argv) < 5 else min(true.shape[0], int(argv[4]))
    t0 = time.perf_counter()
    b_img, m_img, pairs = [], [], 0
    for i in range(n):
        t = np.trunc(np.asarray(true[i], dtype=np.float64)).astype(np.int64)
        p = np.trunc(np.asarray(pred[i], dtype=np.float64)).astype(np.int64)
        bt = binarize(t)
        b_img.append(float("nan") if len(np.unique(bt)) == 1 else pq(bt, binarize(p)))
        m_img.append(nanmean([float("nan") if len(np.unique(t[..., c])) == 1 else pq(t[..., c], p[..., c]) for c in range(5)]))
        tp_, pp_ = points(t), points(p)
        d = cdist(tp_[:, :2].astype(np.float32), pp_[:, :2].astype(np.float32))
        r, c = linear_sum_assignment(d)
        pairs += int((d[r, c] <= 12).sum())
    by_tissue = {}
    for i in range(n):
        if types[i] in TISSUES:
            by_tissue.setdefault(types[i], []).append(i)
    bpq = nanmean([nanmean([b_img[i] for i in idx]) for idx in by_tissue.values()])
    mpq = nanmean([nanmean([m_img[i] for i in idx]) for idx in by_tissue.values()])
    seconds = time.perf_counter() - t0
    clean = lambda v: None if math.isnan(v) else v
    print(json.dumps({"seconds": seconds, "images": n, "bPQ": clean(bpq), "mPQ": clean(mpq), "pairs": pairs}))

if __name__ == "__main__":
    main(sys.argv)
