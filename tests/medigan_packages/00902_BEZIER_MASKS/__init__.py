"""Procedural tumour-like masks from closed Bezier curves (no weights), as the historical medigan
package 00007_BEZIERCURVE_TUMOUR_MASK: a list of (H, W) uint8 masks holding 0 and 1."""

import numpy as np

from .bezier import closed_curve_mask


def generate(model_file, num_samples=8, output_path=None, save_images=True, image_size=32, num_points=6, **kwargs):
    samples = [closed_curve_mask(int(image_size), int(num_points), np.random) for _ in range(num_samples)]
    if save_images:
        from pathlib import Path

        from PIL import Image

        Path(output_path).mkdir(parents=True, exist_ok=True)
        for i, mask in enumerate(samples):
            Image.fromarray(mask * 255).save(Path(output_path) / f"{i}_mask.png")
    return samples
