"""Translation returning (image, name) tuples with save_images=False, as the published Pix2PixHD
package 00023 does: the name is the input file's name."""

import os

import numpy as np


def generate(model_file, num_samples=4, output_path=None, save_images=True, input_path="input/", image_size="16",
             gpu_id="0", **kwargs):
    folder = input_path
    names = sorted(f for f in os.listdir(folder) if f.endswith(".npy"))[:num_samples]
    offset = int(np.load(model_file)[0])
    out = []
    for name in names:
        x = np.load(os.path.join(folder, name))
        out.append(((x.astype(np.int64) + offset) % 256).astype(np.uint8))
    if save_images:
        from PIL import Image

        os.makedirs(output_path, exist_ok=True)
        for name, img in zip(names, out):
            Image.fromarray(img).save(os.path.join(output_path, name.replace(".npy", ".png")))
        return None
    return list(zip(out, names))
