"""A tiny DCGAN in the shape of medigan's template package: (H, W, 1) uint8 images."""

from pathlib import Path

import torch

from .model import Generator


def generate(model_file, num_samples=8, output_path=None, save_images=True, gpu_id=0, image_size=32, **kwargs):
    net = Generator()  # gpu_id is accepted as medigan passes it; this tiny network runs on the CPU
    net.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=True))
    net.eval()
    z = torch.randn(num_samples, 16, 1, 1)  # the global RNG, as medigan packages draw
    with torch.no_grad():
        x = net(z)
    images = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    samples = [images[i] for i in range(num_samples)]
    if save_images:
        from PIL import Image

        Path(output_path).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(samples):
            Image.fromarray(img[:, :, 0]).save(Path(output_path) / f"{i}.png")
    return samples
