import os

import numpy as np


def input_files(folder):
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".png"))


def load_weights(model_file):
    with np.load(model_file) as w:
        return {k: w[k] for k in w.files}


def translate(path, weights, forward=True):
    from PIL import Image

    x = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    y = weights["gain"] * (255 - x if forward else x) + weights["bias"]
    return np.clip(np.round(y), 0, 255).astype(np.uint8)
