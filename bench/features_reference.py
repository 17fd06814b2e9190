"""Benchmark peer of the per-nucleus features: what a practitioner writes with scikit-image.

    /usr/bin/python3 bench/features_reference.py IMAGE_DIR LABEL_DIR

IMAGE_DIR holds NAME.png (RGB; alpha dropped), LABEL_DIR NAME.mat with `inst_map` (CoNSeP layout).
For every tile: H = rgb2hed(rgb)[..., 0], G = filters.sobel(H), then per nucleus regionprops with
H as the intensity image (area, equivalent diameter, eccentricity, axes, solidity, extent,
perimeter), find_boundaries on the object mask padded by one pixel (boundary B), a Euclidean
distance transform of that padded mask (squared depth d², core = 4·d² > max d², rim = the rest) and
NumPy for the means/variance. The same quantities as stages/attributes/mask_features.ts.

Prints one JSON line: {"seconds": time of the feature computation only (files are loaded
before the clock starts), "nuclei": count, "tiles": count, "check": sums for a cross-check}.
"""
import glob
import json
import os
import sys
import time

import numpy as np
import scipy.io
from PIL import Image
from scipy import ndimage as ndi
from skimage.color import rgb2hed
from skimage.filters import sobel
from skimage.measure import regionprops
from skimage.segmentation import find_boundaries


def tile_features(rgb, inst):
    H = rgb2hed(rgb)[..., 0]
    G = sobel(H)
    out = []
    for rp in regionprops(inst, intensity_image=H):
        r0, c0, r1, c1 = rp.bbox
        mask = rp.image
        padded = np.pad(mask, 1)
        boundary = find_boundaries(padded, connectivity=1, mode="inner")[1:-1, 1:-1] & mask
        d2 = np.rint(ndi.distance_transform_edt(padded)[1:-1, 1:-1] ** 2).astype(np.int64)
        dmax = d2[mask].max()
        core = mask & (4 * d2 > dmax)
        rim = mask & ~core
        h = rp.image_intensity
        hv = h[mask]
        major, minor = rp.axis_major_length, rp.axis_minor_length
        area = rp.area
        out.append({
            "id": rp.label,
            "area": int(area),
            "equivalent_diameter": rp.equivalent_diameter_area,
            "eccentricity": rp.eccentricity,
            "aspect_ratio": major / minor if minor > 0 else None,
            "solidity": rp.solidity,
            "extent": rp.extent,
            "perimeter_ratio": rp.perimeter ** 2 / (4 * np.pi * area),
            "mean_boundary_gradient": G[r0:r1, c0:c1][boundary].mean(),
            "hematoxylin_mean": hv.mean(),
            "hematoxylin_var": hv.var(),
            "core_rim_diff": h[core].mean() - h[rim].mean() if rim.any() else None,
        })
    return out


def main():
    image_dir, label_dir = sys.argv[1], sys.argv[2]
    tiles = []
    for path in sorted(glob.glob(os.path.join(image_dir, "*.png"))):
        stem = os.path.splitext(os.path.basename(path))[0]
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        inst = scipy.io.loadmat(os.path.join(label_dir, stem + ".mat"))["inst_map"].astype(np.int32)
        tiles.append((rgb, inst))
    t0 = time.perf_counter()
    results = [tile_features(rgb, inst) for rgb, inst in tiles]
    seconds = time.perf_counter() - t0
    records = [r for tile in results for r in tile]
    check = {
        "area": sum(r["area"] for r in records),
        "hematoxylin_mean": float(sum(r["hematoxylin_mean"] for r in records)),
        "perimeter_ratio": float(sum(r["perimeter_ratio"] for r in records)),
        "solidity": float(sum(r["solidity"] for r in records)),
        "mean_boundary_gradient": float(sum(r["mean_boundary_gradient"] for r in records)),
    }
    print(json.dumps({"seconds": seconds, "nuclei": len(records), "tiles": len(tiles), "check": check}))


if __name__ == "__main__":
    main()
