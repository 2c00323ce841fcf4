"""``medhub report``: one self-contained HTML page (and JSON) evaluating a model on real data.

The page a researcher attaches to a paper's supplement: the model card's facts, grids of synthetic
and real images, the metrics table (FID, KID, precision, recall, density, coverage) with bootstrap
intervals and, given the training images, the real-real baseline of every figure and the
memorisation check with the closest-training-image panels. Images are inline base64 PNGs; the
page loads nothing from anywhere.

Example:
    >>> from medhub.evaluate.report import grid_png
    >>> import numpy as np
    >>> grid_png([np.zeros((8, 8), np.uint8)] * 3, ncols=2)[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import replacing
from ..errors import InvalidArgumentError, OutputPathError
from ..execution.inputs import check_inputs
from ..validate import check_positive
from .features import to_unit
from .memorization import MemorizationReport, load_images, memorization_from_arrays
from .suite import CI_METHOD, Estimate, compute_metrics, json_safe, kid_subset_size_or_default, parse_metrics

DIRECTION = {"FID": "lower is better", "KID": "lower is better (0: same distribution)",
             "precision": "share of samples that look real (higher is better)",
             "recall": "share of real variety the model covers (higher is better)",
             "density": "about 1 for matching distributions; above 1: samples crowd around real images",
             "coverage": "share of real images with a sample nearby (higher is better)"}
CARD_FACTS = (("title", "description.title"), ("version", "description.version"),
              ("authors", "description.authors"), ("publication", "description.publication"),
              ("DOI", "description.doi"), ("intended use", "description.intended_use"),
              ("comment", "description.comment"), ("modality", "selection.modality"), ("organ", "selection.organ"),
              ("type", "selection.type"), ("dataset", "selection.dataset"), ("license", "selection.license"),
              ("catalog performance", "selection.performance"))


@dataclass
class ReportResult:
    """Where the report was written, its data (as in the JSON) and a short text summary."""

    html_path: Path
    json_path: Path
    data: dict[str, Any]
    summary: str


def _display(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    scaled = arr.dtype in (np.uint8, np.uint16, np.bool_) or (arr.size and 0 <= arr.min() and arr.max() <= 1)
    x = to_unit(arr, normalize=not scaled)
    x = x[..., 0] if x.shape[-1] == 1 else x
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def grid_png(images: list[np.ndarray], ncols: int = 8, pad: int = 2, scale: int = 2) -> bytes:
    """A PNG of ``images`` in a grid (grey or RGB, any sizes: cells take the largest)."""
    from PIL import Image

    tiles = [_display(i) for i in images]
    if not tiles:
        raise InvalidArgumentError("A grid needs at least one image.")
    rgb = any(t.ndim == 3 for t in tiles)
    tiles = [np.repeat(t[..., None], 3, -1) if rgb and t.ndim == 2 else t for t in tiles]
    h, w = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    ncols = max(1, min(ncols, len(tiles)))
    nrows = -(-len(tiles) // ncols)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + ((3,) if rgb else ()), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + t.shape[0], pad + c * (w + pad): pad + c * (w + pad) + t.shape[1]] = t
    img = Image.fromarray(canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _img_tag(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _dig(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _fact(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, "", []))
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


def _est(e: dict[str, Any] | None) -> str:
    if not e:
        return ""
    text = f"{e['value']:.4g}"
    if e.get("std") is not None:
        text += f" &plusmn; {e['std']:.2g}"
    if e.get("replicates"):
        text += f" <span class=ci>[{e['low']:.4g}, {e['high']:.4g}]</span>"
    return text


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.ci{color:#555}.note{color:#555;font-size:90%}img{max-width:100%}
.panel{display:inline-block;margin:6px;text-align:center;font-size:80%}.flag{color:#b00;font-weight:bold}"""


def render_html(data: dict[str, Any], grids: dict[str, bytes], panels: list[tuple[bytes, str]]) -> str:
    """The report page from the report's data, grid PNGs and memorisation panels."""
    e = html.escape
    card = data["model_card"]
    out = [f"<!doctype html><html><head><meta charset=utf-8><title>medhub report: {e(data['model_id'])}</title>"
           f"<style>{CSS}</style></head><body>",
           f"<h1>{e(data['model_id'])}</h1><p>{e(str(card.get('title', '')))}</p>",
           "<h2>Model card</h2><table>"]
    out += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in card.items() if v and k != "title"]
    out.append("</table>")
    run = data["run"]
    out.append(f"<h2>Samples</h2><p>{run['n_synthetic']} samples, seed {run['seed']}"
               f"{', inputs ' + e(json.dumps(run['model_args'])) if run['model_args'] else ''}; real: "
               f"{e(run['real'])}.</p>")
    for name, png in grids.items():
        out.append(f"<h3>{e(name)}</h3>{_img_tag(png, name)}")
    m = data["metrics"]
    base = data.get("baseline") or {}
    out.append(f"<h2>Metrics</h2><p class=note>Features: {e(m['extractor'])}{' (normalised)' if m['normalize'] else ''};"
               f" [ ]: {int(round(100 * m['settings']['confidence']))}% {e(CI_METHOD)}, "
               f"{m['settings']['bootstrap']} replicates; KID &plusmn;: std over {m['settings']['kid_subsets']} subsets "
               f"of {m['settings']['kid_subset_size']}; k = {m['settings']['k']}.</p>")
    head = "<tr><th>figure</th><th>synthetic vs real</th>"
    head += (f"<th>real-real baseline ({run['n_synthetic']} training vs real)</th>" if base else "")
    out.append(f"<table>{head}<th>reading</th></tr>")
    for name, est in m["figures"].items():
        cells = f"<td>{e(name)}</td><td>{_est(est)}</td>" + (f"<td>{_est(base.get(name))}</td>" if base else "")
        out.append(f"<tr>{cells}<td class=note>{e(DIRECTION.get(name, ''))}</td></tr>")
    out.append("</table>")
    if not base:
        out.append("<p class=note>No training images given (--train): no real-real baseline. At these sizes FID "
                   "carries a large small-sample bias; read it against the baseline.</p>")
    mem = data.get("memorization")
    if mem:
        out.append("<h2>Memorisation check</h2><table><tr><th>space</th><th>median distance to nearest training "
                   "image: samples</th><th>held-out real</th><th>closer than held-out (baseline)</th>"
                   "<th>near copies</th></tr>")
        for space, s in mem["summary"].items():
            flag = s.get("closer_than_held_out", 0) > s.get("closer_than_held_out_baseline", 1) + 0.1
            out.append(f"<tr><td>{e(space)}</td><td>{s['median_distance_synthetic']:.4g}</td>"
                       f"<td>{s.get('median_distance_held_out', float('nan')):.4g}</td>"
                       f"<td{' class=flag' if flag else ''}>{100 * s.get('closer_than_held_out', float('nan')):.0f}% "
                       f"({100 * s.get('closer_than_held_out_baseline', float('nan')):.0f}%)</td>"
                       f"<td>{100 * s.get('near_copies', float('nan')):.0f}%</td></tr>")
        out.append("</table><p class=note>Closer than held-out: share of samples closer to their nearest training "
                   "image than any held-out real image is to it; baseline: the same share for the held-out images "
                   "(leave one out). Near copies: pixel distance (RMS, intensities in [0, 1]) below the smallest "
                   "held-out-to-training distance. A share well above its baseline means the model reproduces "
                   "training images.</p><h3>Samples closest to a training image</h3>")
        out += [f'<div class=panel>{_img_tag(png, caption)}<br>{e(caption)}</div>' for png, caption in panels]
    out.append(f"<h2>Provenance</h2><pre>{e(json.dumps(data['provenance'], indent=2))}</pre></body></html>")
    return "\n".join(out)


def _generate(g: Any, model_id: str, n: int, seed: int, device: str, model_args: dict[str, Any]) -> list[np.ndarray]:
    samples = g.generate(model_id, num_samples=n, save_images=False, seed=seed, device=device, progress=False,
                         **model_args)
    images = [np.asarray(s[0] if isinstance(s, tuple) else s) for s in samples]
    if images and (images[0].ndim > 3 or (images[0].ndim == 3 and min(images[0].shape) > 4)):
        raise InvalidArgumentError(f"{model_id} generates volumes {images[0].shape}; the report compares 2D images: "
                                   "evaluate slices with medhub.evaluate.metrics_report instead.")
    return images


def report_paths(output: str | os.PathLike[str], model_id: str) -> tuple[Path, Path]:
    """Where :func:`model_report` writes: ``output`` (``.html`` added when it has no such suffix)
    and the same name with ``.json``; an existing folder gets ``<model_id>.html`` and
    ``<model_id>.json`` inside it. A folder that does not exist or cannot be written to is refused
    with :class:`~medhub.errors.InvalidArgumentError`, before any work.

    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> [p.name for p in report_paths(f"{folder}/report", "00101_X")], report_paths(folder, "00101_X")[0].name
    (['report.html', 'report.json'], '00101_X.html')
    """
    html_path = Path(output).expanduser()
    if html_path.is_dir():
        html_path = html_path / f"{model_id}.html"
    elif html_path.suffix.lower() not in (".html", ".htm"):
        html_path = html_path.with_name(html_path.name + ".html")
    folder = html_path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InvalidArgumentError(f"Cannot write the report {html_path}: {folder} {what}; create it first or "
                                   "choose another -o.")
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise InvalidArgumentError(f"Cannot write the report {html_path}: {folder} is not writable "
                                   f"({exc.strerror or exc}); choose another -o.") from None
    return html_path, html_path.with_suffix(".json")


def _write_atomic(files: dict[Path, str]) -> None:
    """Write every file (each through a temporary file renamed into place), or none of them."""
    try:
        with contextlib.ExitStack() as stack:  # all written before any is renamed; an error removes every one
            for path, text in files.items():
                stack.enter_context(replacing(path)).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputPathError(f"Cannot write the report next to {next(iter(files))}: {exc.strerror or exc}.") from None


def model_report(model_id: str | int, real: Any, train: Any = None, num_samples: int | None = None,
                 output: str | os.PathLike[str] = "report.html", model_args: dict[str, Any] | None = None,
                 metrics: str = "fid,kid,prdc", extractor: str = "inception", weights: Any = None,
                 normalize: bool = False, batch_size: int = 32, device: str = "cpu", seed: int = 0,
                 real_cache: Any = None, k: int = 5, kid_subsets: int = 100, kid_subset_size: int | None = None,
                 bootstrap: int = 1000, confidence: float = 0.95, progress: bool | None = False, panels: int = 8,
                 generators: Any = None) -> ReportResult:
    """Generate ``num_samples`` (default: as many as real images) with ``seed``, measure them
    against ``real`` (a folder, array or list of held-out real images) and write ``output`` (HTML)
    and the same name with ``.json``. ``train``: the model's training images; adds the real-real
    baseline (as many training images as samples vs ``real``) and the memorisation check.
    ``model_args``: model inputs (e.g. ``{"condition": "T1"}``). ``output``: an existing folder gets
    ``<model_id>.html`` (see :func:`report_paths`). The output place, the batch size and the model
    inputs are checked before any image is read or generated. Returns where it wrote and what.
    """
    from ..version import __version__
    from .core import compute_features

    if generators is None:
        from ..generators import Generators

        generators = Generators()
    model_id = generators.config_manager.resolve_model_id(str(model_id))
    config = generators.get_config_by_id(model_id)
    names = parse_metrics(metrics)
    html_path, json_path = report_paths(output, model_id)  # a bad -o, batch size or input fails before any work
    check_positive("batch_size", batch_size, allow_none=False)
    check_inputs(generators.get_model_executor(model_id), model_args or {})
    real_images, _, real_what = load_images(real, seed, device, normalize, generators.config_manager)
    n = len(real_images) if num_samples is None else int(num_samples)
    if n < 2:
        raise InvalidArgumentError(f"num_samples must be at least 2, got {n}.")
    synthetic = _generate(generators, model_id, n, seed, device, dict(model_args or {}))
    feat = dict(extractor=extractor, weights=weights, normalize=normalize, batch_size=batch_size, device=device,
                seed=seed, progress=progress)
    fr, info = compute_features(real_images, cache=real_cache, **feat)
    fs, _ = compute_features(synthetic, **feat)
    opts = dict(metrics=names, k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, bootstrap=bootstrap,
                confidence=confidence, seed=seed)
    figures = compute_metrics(fr, fs, **opts)
    baseline: dict[str, Estimate] = {}
    mem: MemorizationReport | None = None
    train_images: list[np.ndarray] = []
    if train is not None:
        train_images, train_names, _ = load_images(train, seed, device, normalize)
        ft, _ = compute_features(train_images, **feat)
        if len(train_images) >= n:
            pick = np.sort(np.random.default_rng(seed).choice(len(train_images), n, replace=False))
            baseline = compute_metrics(fr, ft[pick], **opts)
        mem = memorization_from_arrays(synthetic, train_images, real_images, (fs, ft, fr), normalize, extractor,
                                       train_names)
    card = {label: _fact(_dig(config, key)) for label, key in CARD_FACTS}
    data: dict[str, Any] = {
        "model_id": model_id,
        "model_card": card,
        "run": {"n_synthetic": n, "n_real": len(real_images), "n_train": len(train_images), "seed": seed,
                "device": device, "model_args": model_args or {}, "real": real_what},
        "metrics": {"figures": {k_: vars(v) for k_, v in figures.items()}, "extractor": extractor,
                    "normalize": normalize, "ci_method": CI_METHOD,
                    "preprocessing": {k_: v for k_, v in info.items() if k_ not in ("source", "n")},
                    "settings": {"k": k, "kid_subsets": kid_subsets, "bootstrap": bootstrap, "confidence": confidence,
                                 "kid_subset_size": kid_subset_size_or_default(len(fr), n, kid_subset_size, names)}},
        "baseline": {k_: vars(v) for k_, v in baseline.items()},
        "memorization": mem.to_dict() if mem else None,
        "provenance": {"medhub": __version__, "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       "command": f"medhub report {model_id} (see run and metrics.settings)"},
    }
    grids = {f"Synthetic ({min(n, 32)} of {n})": grid_png(synthetic[:32]),
             f"Real ({min(len(real_images), 32)} of {len(real_images)})": grid_png(real_images[:32])}
    panel_list: list[tuple[bytes, str]] = []
    if mem is not None:
        key = "feature" if "features" in mem.summary else "pixel"
        for row in sorted(mem.samples, key=lambda r: r[f"{key}_distance"])[:panels]:
            i, tf, tp = row["index"], row.get("nearest_feature", row["nearest_pixel"]), row["nearest_pixel"]
            caption = (f"sample {i} | nearest training by features: {train_names[tf]} (d={row.get('feature_distance', 0):.3g})"
                       f" | by pixels: {train_names[tp]} (RMS {row['pixel_distance']:.3g})")
            panel_list.append((grid_png([synthetic[i], train_images[tf], train_images[tp]], ncols=3), caption))
    _write_atomic({html_path: render_html(data, grids, panel_list),
                   json_path: json.dumps(json_safe(data), indent=2, default=float) + "\n"})
    lines = [f"  {est}" + (f"   real-real {baseline[name].value:.3f}" if name in baseline else "")
             for name, est in figures.items()]
    if mem is not None:
        lines.append(mem.summary_text())
    return ReportResult(html_path, json_path, data, "\n".join(lines))
