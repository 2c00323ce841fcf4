"""An independent forward pass of the FID Inception network, written from its architecture.

Only the tensors of the TorchScript file's ``state_dict`` are used (conv weights and the folded
batch-norm ``beta`` / ``mean`` / ``var``); the topology below is Inception-v3 as used for FID:
stem, 3 x InceptionA, InceptionB, 4 x InceptionC, InceptionD, 2 x InceptionE, 8x8 average pool.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# convolutions with stride 2, and stride-1 convolutions without padding ("valid")
_STRIDE2 = {"conv", "mixed_3.conv", "mixed_3.tower.conv_2", "mixed_8.tower.conv_1", "mixed_8.tower_1.conv_3"}
_VALID = {"conv_1", "conv_3", "conv_4"}


def _conv(sd: dict, name: str, x: torch.Tensor) -> torch.Tensor:
    w = sd[f"net.layers.{name}.weight"]
    stride = 2 if name in _STRIDE2 else 1
    pad = (0, 0) if (stride == 2 or name in _VALID) else (w.shape[2] // 2, w.shape[3] // 2)
    x = F.conv2d(x, w, None, stride, pad)
    mean, var, beta = (sd[f"net.layers.{name}.{k}"] for k in ("mean", "var", "beta"))
    x = (x - mean[None, :, None, None]) / torch.sqrt(var[None, :, None, None] + 1e-3) + beta[None, :, None, None]
    return F.relu(x)


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def _max3s2(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2)


def _seq(sd: dict, prefix: str, names: list[str], x: torch.Tensor) -> torch.Tensor:
    for n in names:
        x = _conv(sd, f"{prefix}.{n}", x)
    return x


def _block_a(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([
        _conv(sd, f"{p}.conv", x),
        _seq(sd, f"{p}.tower", ["conv", "conv_1"], x),
        _seq(sd, f"{p}.tower_1", ["conv", "conv_1", "conv_2"], x),
        _conv(sd, f"{p}.tower_2.conv", _avg3(x)),
    ], 1)


def _block_b(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([_conv(sd, f"{p}.conv", x), _seq(sd, f"{p}.tower", ["conv", "conv_1", "conv_2"], x), _max3s2(x)], 1)


def _block_c(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([
        _conv(sd, f"{p}.conv", x),
        _seq(sd, f"{p}.tower", ["conv", "conv_1", "conv_2"], x),
        _seq(sd, f"{p}.tower_1", ["conv", "conv_1", "conv_2", "conv_3", "conv_4"], x),
        _conv(sd, f"{p}.tower_2.conv", _avg3(x)),
    ], 1)


def _block_d(sd: dict, p: str, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([
        _seq(sd, f"{p}.tower", ["conv", "conv_1"], x),
        _seq(sd, f"{p}.tower_1", ["conv", "conv_1", "conv_2", "conv_3"], x),
        _max3s2(x),
    ], 1)


def _block_e(sd: dict, p: str, x: torch.Tensor, pool: str) -> torch.Tensor:
    a = _conv(sd, f"{p}.tower_conv", x)
    b = _conv(sd, f"{p}.tower_1_conv_1", _conv(sd, f"{p}.tower_1_conv", x))
    pooled = _avg3(x) if pool == "avg" else F.max_pool2d(x, 3, 1, 1)
    return torch.cat([
        _conv(sd, f"{p}.conv", x),
        _conv(sd, f"{p}.tower_mixed_conv", a), _conv(sd, f"{p}.tower_mixed_conv_1", a),
        _conv(sd, f"{p}.tower_1_mixed_conv", b), _conv(sd, f"{p}.tower_1_mixed_conv_1", b),
        _conv(sd, f"{p}.tower_2_conv", pooled),
    ], 1)


@torch.no_grad()
def reference_features(state_dict: dict, x: torch.Tensor) -> torch.Tensor:
    """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) pool3 features."""
    sd = {k: v.double() for k, v in state_dict.items()}
    x = x.double()
    x = _conv(sd, "conv", x)
    x = _conv(sd, "conv_1", x)
    x = _conv(sd, "conv_2", x)
    x = _max3s2(x)
    x = _conv(sd, "conv_3", x)
    x = _conv(sd, "conv_4", x)
    x = _max3s2(x)
    for name in ("mixed", "mixed_1", "mixed_2"):
        x = _block_a(sd, name, x)
    x = _block_b(sd, "mixed_3", x)
    for name in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
        x = _block_c(sd, name, x)
    x = _block_d(sd, "mixed_8", x)
    x = _block_e(sd, "mixed_9", x, "avg")
    x = _block_e(sd, "mixed_10", x, "max")
    return F.avg_pool2d(x, 8).reshape(x.shape[0], -1)
