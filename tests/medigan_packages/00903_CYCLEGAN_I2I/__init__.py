"""Image-to-image translation in the shape of medigan's CycleGAN packages (00021): the inputs are
the PNG files of ``input_path`` in sorted order; ``translate_all_images`` translates all of them
whatever ``num_samples`` says. The package puts its folder on sys.path and imports a sibling
module by its plain name, as several published packages do."""

import os
import sys

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

import i2i_utils  # noqa: E402


def generate(model_file, num_samples=8, output_path=None, save_images=True,
             input_path="models/00903_CYCLEGAN_I2I/inputs/T1", translate_all_images=False, gpu_id=0, T1_to_T2=True,
             **kwargs):
    files = i2i_utils.input_files(input_path)
    if not translate_all_images:
        files = files[:num_samples]
    weights = i2i_utils.load_weights(model_file)
    samples = [i2i_utils.translate(path, weights, T1_to_T2) for path in files]
    if save_images:
        from pathlib import Path

        from PIL import Image

        Path(output_path).mkdir(parents=True, exist_ok=True)
        for path, img in zip(files, samples):
            Image.fromarray(img).save(Path(output_path) / os.path.basename(path))
    return samples
