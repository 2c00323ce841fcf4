"""Looking at models: the latent explorer, sample grids and the catalog's FID overview.

* :func:`visualize` / :class:`LatentExplorer`: a matplotlib figure with one slider per group of
  latent dimensions (each slider adds a shift to exactly its own group), an offset slider (a
  shift added to every dimension), a condition slider for conditional models, Seed and Reset
  buttons, and the generated image (and mask) side by side.
* :func:`plot_samples`: a grid of samples (mid slices of volumes, masks drawn as contours).
* :func:`plot_fid_overview`: each model's FID against its real-real lower bound, by modality.

Backends: where pyplot is already in use (scripts that import it, notebooks) or a display is
available, figures are made with pyplot, so they show as usual (``%matplotlib widget`` makes
the explorer interactive in Jupyter). Without a display, figures are made with matplotlib's
``Figure`` API on an Agg canvas: nothing is shown, ``save_path`` writes a PNG, and the global
backend is never switched.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError, LatentNotSupportedError
from .figures import close_figure, is_live, is_pyplot_figure, new_figure, show_if_interactive, use_pyplot

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .config import ConfigManager
    from .execution import ModelExecutor
    from .outputs import OutputSpec

logger = logging.getLogger("medhub.visualize")

__all__ = ["LatentExplorer", "close_figure", "fid_overview_data", "is_live", "new_figure", "plot_fid_overview",
           "plot_samples", "use_pyplot", "visualize"]

def _executor(model_id: str | int, package_path: str | os.PathLike[str] | None, install_dependencies: bool,
              trust_remote_code: bool, get_executor: Callable[..., ModelExecutor] | None) -> ModelExecutor:
    """The model's executor from ``get_executor`` (default: a new one from the default catalog), prepared."""
    if get_executor is None:
        from .data import default_executors

        get_executor = default_executors()
    executor = get_executor(model_id, package_path=package_path)
    executor.prepare(install_dependencies, trust_remote_code)
    return executor


# ---------------------------------------------------------------------------- displaying outputs
def _roles(specs: Sequence[OutputSpec]) -> tuple[OutputSpec | None, OutputSpec | None, OutputSpec | None]:
    """The outputs shown as image, mask and label (the first of each kind)."""
    image = next((s for s in specs if s.kind in ("image", "volume")), None)
    mask = next((s for s in specs if s.kind == "mask"), None)
    label = next((s for s in specs if s.kind == "label"), None)
    if image is None:
        image = next((s for s in specs if s.kind != "label"), None)
    return image, mask, label


def _channel_last(spec: OutputSpec, arr: np.ndarray) -> bool:
    return arr.ndim == 3 and (spec.channels == arr.shape[-1] or (spec.channels is None and arr.shape[-1] in (3, 4)))


def displayable(arr: np.ndarray, spec: OutputSpec, axis: int = 0) -> tuple[np.ndarray, dict[str, Any]]:
    """One sample as something ``imshow`` shows: 2D (grey) or (H, W, 3|4) colour; volumes give
    their middle slice along ``axis``. Returns the array and imshow keyword arguments.

    Example:
        >>> from medhub.outputs import OutputSpec
        >>> img, kw = displayable(np.zeros((6, 7, 5), np.float32), OutputSpec("v", "volume", (6, 7, 5), "float32"))
        >>> img.shape, kw["cmap"]
        ((7, 5), 'gray')
    """
    a = np.asarray(arr)
    if a.ndim == 3 and _channel_last(spec, a):
        if a.shape[-1] == 1:
            a = a[..., 0]
        else:
            if a.dtype != np.uint8:
                lo, hi = spec.range if spec.range is not None else (float(a.min()), float(a.max()))
                a = np.clip((a.astype(np.float32) - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
            return a, {}
    while a.ndim > 2:  # volumes (and any extra axis): the middle slice
        a = np.take(a, a.shape[axis] // 2, axis=axis)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8)
        return a, {"cmap": "gray", "vmin": 0, "vmax": 1}
    if spec.kind == "mask" and spec.values is not None and len(spec.values) > 2:
        return a, {"cmap": "viridis", "vmin": min(spec.values), "vmax": max(spec.values)}
    if spec.range is not None:
        lo, hi = spec.range
    elif spec.kind == "mask" and spec.values is not None:
        lo, hi = min(spec.values), max(spec.values)
    elif a.dtype.kind == "u":
        lo, hi = 0, np.iinfo(a.dtype).max
    else:
        lo, hi = float(np.min(a)), float(np.max(a))
    return a, {"cmap": "gray", "vmin": lo, "vmax": hi if hi > lo else lo + 1}


def _label_text(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------- latent explorer
def latent_input(executor: ModelExecutor) -> tuple[int, str, tuple[int, ...]]:
    """Latent size, input name and input shape (for one sample) that drive ``executor``'s model.

    ``medhub/1`` packages take ``latent`` of shape (N, size) (declared in
    ``generate_method.per_sample_inputs`` or named by ``sample()``); medigan packages take
    medigan's ``input_latent_vector`` of shape (N, size, 1, 1). Raises
    :class:`~medhub.errors.LatentNotSupportedError` for models without one.
    """
    size = executor.spec.latent_size
    if size is None:
        raise LatentNotSupportedError(
            f"Model {executor.model_id} declares no latent vector size "
            "(execution.generate_method.input_latent_vector_size), so the latent explorer cannot drive it; "
            f"look at its samples with plot_samples({executor.model_id!r}) instead."
        )
    if executor.is_native:
        own = executor.kind.package_inputs(executor.prepare(), executor.spec) or set()
        if "latent" not in executor.spec.per_sample_inputs and "latent" not in own:
            raise LatentNotSupportedError(
                f"Model {executor.model_id}: its sample() takes no `latent` input (declare it in "
                "execution.generate_method.per_sample_inputs and honour it in sample()), so the latent explorer "
                f"cannot drive it; look at its samples with plot_samples({executor.model_id!r}) instead."
            )
        return size, "latent", (1, size)
    return size, "input_latent_vector", (1, size, 1, 1)


class LatentExplorer:
    """The latent-space explorer of one model (what :func:`visualize` returns).

    The latent vector shown is ``base_latent + offset + shift[g]`` on the dimensions of group
    ``g``: ``base_latent`` is a standard normal vector drawn from ``numpy.random.default_rng(seed)``,
    ``offset`` the offset slider, ``shift[g]`` slider ``g`` (group ``g`` holds dimensions
    ``g*slider_grouper`` to ``(g+1)*slider_grouper - 1``). *Seed* moves to the next seed (a new base
    vector) and resets the sliders; *Reset* sets every slider back to 0 (and the condition to its
    default).

    Attributes: ``fig``, ``sliders`` (one per group), ``offset_slider``, ``condition_slider``
    (None for unconditional models), ``seed_button``, ``reset_button``, ``groups`` (the dimension
    ranges), ``image`` / ``mask`` / ``label`` (the current sample), ``seed``.
    """

    max_shift = 3.0

    def __init__(self, executor: ModelExecutor, slider_grouper: int = 10, seed: int | None = None,
                 device: str = "auto", condition_range: tuple[int, int] | None = None,
                 pyplot: bool | None = None, **inputs: Any) -> None:
        from .execution.device import resolve_device
        from .execution.seeds import check_seed

        self.executor = executor
        self.model_id = executor.model_id
        self.latent_size, self._latent_name, self._latent_shape = latent_input(executor)
        if isinstance(slider_grouper, bool) or not isinstance(slider_grouper, (int, np.integer)) or slider_grouper <= 0:
            raise InvalidArgumentError(f"slider_grouper must be a positive integer, not {slider_grouper!r}.")
        k = int(slider_grouper)
        self.slider_grouper = k
        self.groups = [range(s, min(s + k, self.latent_size)) for s in range(0, self.latent_size, k)]
        seed = check_seed(seed)
        self.seed = secrets.randbelow(2**31) if seed is None else seed
        self.base_latent = self._base_latent(self.seed)
        self.device = resolve_device(device, executor.uses_torch)
        self.inputs = inputs
        custom = executor.spec.custom_args
        self.conditional = "condition" in custom and "condition" not in inputs
        lo, hi = condition_range if condition_range is not None else (0, 1)
        default = custom.get("condition")
        self._condition_init = default if isinstance(default, (int, float)) and not isinstance(default, bool) else lo
        self._condition_range = (lo, hi)
        self._suspended = True
        self.image: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.label: Any = None
        self.calls = 0
        self._build(pyplot)  # generates and shows the first sample
        self._suspended = False

    # -- state
    def _base_latent(self, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).standard_normal(self.latent_size, dtype=np.float32)

    @property
    def latent(self) -> np.ndarray:
        """The latent vector the model gets now (float32, shape (latent_size,))."""
        z = self.base_latent + np.float32(self.offset_slider.val)
        for group, slider in zip(self.groups, self.sliders):
            z[group.start:group.stop] += np.float32(slider.val)
        return z

    @property
    def condition(self) -> Any:
        return None if self.condition_slider is None else self.condition_slider.val

    def generate(self) -> dict[str, np.ndarray]:
        """Run the model on the current latent (and condition); the checked outputs of one sample."""
        inputs = dict(self.inputs)
        inputs[self._latent_name] = self.latent.reshape(self._latent_shape)
        if self.condition_slider is not None:
            c = self.condition_slider.val
            inputs["condition"] = int(c) if float(c).is_integer() else float(c)
        self.calls += 1
        return self.executor.sample_batch(range(1), self.seed, self.device, **inputs)

    # -- figure
    def _build(self, pyplot: bool | None) -> None:
        from matplotlib.widgets import Button, Slider

        batch = self.executor.sample_batch(range(1), self.seed, self.device,
                                           **{**self.inputs, self._latent_name: self.base_latent.reshape(self._latent_shape),
                                              **({"condition": self._condition_init} if self.conditional else {})})
        self._image_spec, self._mask_spec, self._label_spec = _roles(self.executor.specs)
        rows = len(self.groups) + 1 + (1 if self.conditional else 0)
        has_mask = self._mask_spec is not None
        height = max(5.5, 0.3 * rows + 2.2)
        width = 13.0 if has_mask else 10.0
        self.fig = fig = new_figure((width, height), pyplot)
        self._pyplot = is_pyplot_figure(fig)
        top, bottom = 1.0 - 1.0 / height, 1.2 / height
        row_h = (top - bottom) / rows
        slider_h = min(0.7 * row_h, 0.3 / height)
        left, slider_w = 0.1, 0.22
        fig.text(left - 0.06, top + 0.4 / height, "latent shifts (each slider adds to its own dimensions)",
                 fontsize=9, weight="bold")

        def slider_axes(row: int) -> Axes:
            return fig.add_axes((left, top - (row + 1) * row_h + (row_h - slider_h) / 2, slider_w, slider_h))

        row = 0
        self.condition_slider = None
        if self.conditional:
            lo, hi = self._condition_range
            integer = all(float(v).is_integer() for v in (lo, hi, self._condition_init))
            self.condition_slider = Slider(slider_axes(row), "condition", lo, hi, valinit=self._condition_init,
                                           valstep=1 if integer else None, valfmt="%d" if integer else "%.2f",
                                           initcolor="none", color="tab:orange")
            row += 1
        self.offset_slider = Slider(slider_axes(row), "offset", -self.max_shift, self.max_shift, valinit=0.0,
                                    valfmt="%+.2f", initcolor="none", color="tab:gray")
        row += 1
        self.sliders = []
        for group in self.groups:
            name = f"z[{group.start}]" if len(group) == 1 else f"z[{group.start}:{group.stop}]"
            s = Slider(slider_axes(row), name, -self.max_shift, self.max_shift, valinit=0.0, valfmt="%+.2f",
                       initcolor="none")
            s.label.set_fontsize(8)
            s.valtext.set_fontsize(8)
            self.sliders.append(s)
            row += 1

        img_left, img_right, img_bottom = 0.42, 0.97, 1.3 / height
        img_top = top
        if has_mask:
            w = (img_right - img_left - 0.03) / 2
            self.image_ax = fig.add_axes((img_left, img_bottom, w, img_top - img_bottom))
            self.mask_ax = fig.add_axes((img_left + w + 0.03, img_bottom, w, img_top - img_bottom))
        else:
            self.image_ax = fig.add_axes((img_left, img_bottom, img_right - img_left, img_top - img_bottom))
            self.mask_ax = None
        self._store(batch)
        assert self._image_spec is not None
        shown, kw = displayable(self.image, self._image_spec)
        self._image_artist = self.image_ax.imshow(shown, interpolation="nearest", **kw)
        self.image_ax.set_axis_off()
        self._mask_artist = None
        if self.mask_ax is not None and self._mask_spec is not None:
            shown, kw = displayable(self.mask, self._mask_spec)
            self._mask_artist = self.mask_ax.imshow(shown, interpolation="nearest", **kw)
            self.mask_ax.set_axis_off()
            self.mask_ax.set_title(self._mask_spec.name)

        bw, bh = 0.12, 0.5 / height
        self.seed_button = Button(fig.add_axes((0.56, 0.3 / height, bw, bh)), "Seed")
        self.reset_button = Button(fig.add_axes((0.56 + bw + 0.03, 0.3 / height, bw, bh)), "Reset")
        self.seed_button.on_clicked(self.next_seed)
        self.reset_button.on_clicked(self.reset)
        self.live = is_live(fig)
        for s in [*self.sliders, self.offset_slider, *([self.condition_slider] if self.condition_slider else [])]:
            s.on_changed(self.update)
            s.drawon = self.live  # headless: no redraw per change (savefig draws anyway)
        self._titles()

    def _store(self, batch: dict[str, np.ndarray]) -> None:
        self.image = batch[self._image_spec.name][0] if self._image_spec is not None else None
        self.mask = batch[self._mask_spec.name][0] if self._mask_spec is not None else None
        self.label = batch[self._label_spec.name][0] if self._label_spec is not None else None

    def _titles(self) -> None:
        self.fig.suptitle(f"{self.model_id}: latent explorer (seed {self.seed}, {self.latent_size} latent dims)",
                          fontsize=12)
        title = self._image_spec.name if self._image_spec is not None else ""
        if self.label is not None:
            title += f"   {self._label_spec.name}: {_label_text(self.label)}"  # type: ignore[union-attr]
        self.image_ax.set_title(title)

    def update(self, _value: Any = None) -> None:
        """Regenerate the sample from the sliders and redraw (slider and button callbacks call this)."""
        if self._suspended:
            return
        self._store(self.generate())
        shown, kw = displayable(self.image, self._image_spec)  # type: ignore[arg-type]
        self._image_artist.set_data(shown)
        self._image_artist.set_clim(kw.get("vmin"), kw.get("vmax"))
        if self._mask_artist is not None:
            shown, kw = displayable(self.mask, self._mask_spec)  # type: ignore[arg-type]
            self._mask_artist.set_data(shown)
            self._mask_artist.set_clim(kw.get("vmin"), kw.get("vmax"))
        self._titles()
        if self.live:
            self.fig.canvas.draw_idle()

    def reset(self, _event: Any = None) -> None:
        """Every slider back to 0 (the condition to its default); one model call."""
        self._suspended = True
        try:
            for s in [*self.sliders, self.offset_slider, *([self.condition_slider] if self.condition_slider else [])]:
                s.reset()
        finally:
            self._suspended = False
        self.update()

    def set_seed(self, seed: int) -> None:
        """A new base latent vector from ``seed``; the sliders are reset."""
        from .execution.seeds import check_seed

        checked = check_seed(seed)
        if checked is None:
            raise InvalidArgumentError("set_seed needs a non-negative integer seed.")
        self.seed = checked
        self.base_latent = self._base_latent(self.seed)
        self.reset()

    def next_seed(self, _event: Any = None) -> None:
        """The *Seed* button: move to the next seed."""
        self.set_seed(self.seed + 1)

    def save(self, path: str | os.PathLike[str], dpi: int = 100) -> None:
        """Write the figure as an image (PNG by the file name)."""
        self.fig.savefig(path, dpi=dpi)

    def close(self) -> None:
        """Release the figure from pyplot (the Figure object stays usable headlessly)."""
        close_figure(self.fig)

    def __repr__(self) -> str:
        return (f"LatentExplorer(model_id={self.model_id!r}, seed={self.seed}, latent_size={self.latent_size}, "
                f"sliders={len(self.sliders)}, conditional={self.conditional})")


def visualize(model_id: str | int, slider_grouper: int = 10, auto_close: bool = False,
              install_dependencies: bool = False, seed: int | None = None,
              save_path: str | os.PathLike[str] | None = None, *, device: str = "auto",
              condition_range: tuple[int, int] | None = None, package_path: str | os.PathLike[str] | None = None,
              trust_remote_code: bool = False, get_executor: Callable[..., ModelExecutor] | None = None,
              **inputs: Any) -> LatentExplorer:
    """Open the latent explorer of a model (see :class:`LatentExplorer`) and return it.

    Args:
        model_id: the model; it needs ``execution.generate_method.input_latent_vector_size`` and
            a latent input (else :class:`~medhub.errors.LatentNotSupportedError`).
        slider_grouper: latent dimensions per slider.
        auto_close: do not show or block; release the figure at once (the returned explorer's
            figure stays usable, e.g. for tests and ``save``).
        install_dependencies: pip-install the model's missing dependencies.
        seed: seed of the base latent vector (default: a random one, shown in the title).
        save_path: write the figure as a PNG.
        device: where the model runs.
        condition_range: (min, max) of the condition slider (default (0, 1), integer steps).
        **inputs: further model inputs.

    With a display (or in a notebook) and an interactive backend the figure is shown (a script
    blocks until it is closed, as in medigan); headless, nothing is shown.
    """
    executor = _executor(model_id, package_path, install_dependencies, trust_remote_code, get_executor)
    explorer = LatentExplorer(executor, slider_grouper, seed=seed, device=device, condition_range=condition_range,
                              **inputs)
    if save_path is not None:
        explorer.save(save_path)
    if auto_close:
        explorer.close()
    else:
        show_if_interactive(explorer.fig)
    return explorer


# ---------------------------------------------------------------------------- sample grids
def plot_samples(model_id: str | int, n: int = 16, seed: int = 0, *, ncols: int | None = None,
                 install_dependencies: bool = False, device: str = "auto",
                 package_path: str | os.PathLike[str] | None = None, save_path: str | os.PathLike[str] | None = None,
                 slice_axis: int = 0, title: str | None = None, pyplot: bool | None = None,
                 trust_remote_code: bool = False, get_executor: Callable[..., ModelExecutor] | None = None, **inputs: Any) -> Figure:
    """A grid of ``n`` samples (indices 0..n-1 of run ``seed``) as a matplotlib Figure.

    Volumes show their middle slice along ``slice_axis``; a mask is drawn as a red contour on
    its image; labels are written above each cell. ``save_path`` writes a PNG.

    Example:
        >>> fig = plot_samples(101, n=4, seed=0, pyplot=False)
        >>> len(fig.axes)
        4
    """
    from .execution.pipeline import collect
    from .execution.seeds import check_seed
    from .validate import check_num_samples

    n = check_num_samples(n)
    checked = check_seed(seed)
    seed = 0 if checked is None else checked
    executor = _executor(model_id, package_path, install_dependencies, trust_remote_code, get_executor)
    batch = collect(executor.batches(range(n), seed, device, **inputs))
    image_spec, mask_spec, label_spec = _roles(executor.specs)
    assert image_spec is not None
    ncols = int(ncols) if ncols else math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    cell = 1.7
    fig = new_figure((ncols * cell, nrows * cell + 0.6), pyplot)
    top = 1 - 0.6 / (nrows * cell + 0.6)
    grid = fig.add_gridspec(nrows, ncols, left=0.01, right=0.99, bottom=0.01, top=top,
                            wspace=0.04, hspace=0.18 if label_spec is not None else 0.04)
    for i in range(n):
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        shown, kw = displayable(batch[image_spec.name][i], image_spec, slice_axis)
        ax.imshow(shown, interpolation="nearest", **kw)
        if mask_spec is not None:
            m, _ = displayable(batch[mask_spec.name][i], mask_spec, slice_axis)
            m = np.asarray(m, dtype=np.float32)
            if m.ndim == 2 and m.max() > m.min():
                ax.contour(m, levels=[(float(m.min()) + float(m.max())) / 2], colors="red", linewidths=0.8)
        if label_spec is not None:
            ax.set_title(f"{label_spec.name}: {_label_text(batch[label_spec.name][i])}", fontsize=7, pad=2)
        ax.set_axis_off()
    what = "mid slices of " if image_spec.kind == "volume" or len(image_spec.shape) == 3 and not image_spec.channels else ""
    fig.suptitle(title or f"{executor.model_id}: {what}{n} samples (seed {seed})", fontsize=10)
    if save_path is not None:
        fig.savefig(save_path, dpi=100)
    return fig


# ---------------------------------------------------------------------------- FID overview
def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def fid_overview_data(catalog: ConfigManager | None = None, model_ids: Sequence[str | int] | None = None,
                      metric: str = "FID") -> tuple[list[dict[str, Any]], list[str]]:
    """Rows ``{model_id, number, modality, <metric>, <metric>_rr, ci, derived}`` of the models that
    have the metric and its real-real figure, and the ids left out.

    ``metric`` is a key of ``selection.performance`` with a real-real companion ``<metric>_rr``
    (``FID``, ``KID``, ``precision``, ``recall``, ``density``, ``coverage``). For FID without
    ``FID_rr``, ``FID_ratio * FID`` is used (medigan defines ``FID_ratio = FID_rr / FID``);
    ``derived`` says which. ``ci`` is the catalog's ``<metric>_ci`` interval, or None. The modality
    is the first entry of ``selection.modality``.

    Example:
        >>> rows, skipped = fid_overview_data()
        >>> row = next(r for r in rows if r["number"] == 1)
        >>> row["modality"], row["FID"], round(row["FID_rr"], 2), row["derived"]
        ('MMG', 67.6, 33.6, True)
        >>> kid = next(r for r in fid_overview_data(metric="KID")[0] if r["number"] == 101)
        >>> kid["KID"] > kid["KID_rr"], len(kid["ci"])
        (True, 2)
    """
    from .config import catalog_or_default

    cm = catalog_or_default(catalog)
    ids = cm.model_ids if model_ids is None else [cm.resolve_model_id(m) for m in model_ids]
    rows, skipped = [], []
    for model_id in ids:
        selection = cm.config_dict[model_id].get("selection", {}) or {}
        perf = selection.get("performance", {}) or {}
        value = _number(perf.get(metric))
        rr = _number(perf.get(f"{metric}_rr"))
        derived = False
        if metric == "FID" and value is not None and rr is None and _number(perf.get("FID_ratio")) is not None:
            rr, derived = _number(perf["FID_ratio"]) * value, True  # type: ignore[operator]
        if value is None or rr is None:
            skipped.append(model_id)
            continue
        ci = perf.get(f"{metric}_ci")
        ci = (float(ci[0]), float(ci[1])) if isinstance(ci, list) and len(ci) == 2 and all(
            _number(c) is not None for c in ci) else None
        modality = (selection.get("modality") or ["unknown"])[0]
        head = model_id.split("_", 1)[0]
        rows.append({"model_id": model_id, "number": int(head) if head.isdigit() else head, "modality": str(modality),
                     metric: value, f"{metric}_rr": rr, "ci": ci, "derived": derived})
    return rows, skipped


def plot_fid_overview(model_ids: Sequence[str | int] | None = None, *, save_path: str | os.PathLike[str] | None = None,
                      pyplot: bool | None = None, catalog: ConfigManager | None = None, metric: str = "FID") -> Figure:
    """Each model's FID (or another metric with a real-real figure: ``KID``, ``precision``,
    ``recall``, ``density``, ``coverage``) against its real-real figure, coloured by modality,
    labelled by model number (as in the medigan paper's Figure 8), with the catalog's bootstrap
    interval as an error bar where it has one. Returns the Figure.

    The dashed line is metric = real-real: a model on it would be as close to the real data as a
    second sample of real data. Models without the metric or its real-real figure are listed under
    the plot.

    Example:
        >>> fig = plot_fid_overview(pyplot=False)
        >>> fig.axes[0].get_xlabel().startswith("FID_rr")
        True
        >>> plot_fid_overview(pyplot=False, metric="KID").axes[0].get_ylabel().startswith("KID")
        True
    """
    from .selection import metric_direction

    rows, skipped = fid_overview_data(catalog, model_ids, metric)
    rr_key = f"{metric}_rr"
    fig = new_figure((9.0, 6.5), pyplot)
    ax = fig.add_axes((0.09, 0.17, 0.68, 0.75))
    modalities: list[str] = []
    for r in rows:
        if r["modality"] not in modalities:
            modalities.append(r["modality"])
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    colours = {m: cmap(i % 10) for i, m in enumerate(modalities)}
    for m in modalities:
        pts = [r for r in rows if r["modality"] == m]
        ax.scatter([r[rr_key] for r in pts], [r[metric] for r in pts], s=60, color=colours[m], label=m,
                   edgecolor="black", linewidth=0.5, zorder=3)
    for r in rows:
        if r["ci"] is not None:
            lo, hi = r["ci"]
            ax.errorbar([r[rr_key]], [r[metric]], yerr=[[max(r[metric] - lo, 0)], [max(hi - r[metric], 0)]],
                        color=colours[r["modality"]], linewidth=1, capsize=3, zorder=2)
        ax.annotate(str(r["number"]), (r[rr_key], r[metric]), xytext=(4, 4), textcoords="offset points",
                    fontsize=8, zorder=4)
    values = [v for r in rows for v in (r[metric], r[rr_key], *(r["ci"] or ()))]
    low, high = min([0.0, *values]), max([1e-12, *values])
    pad = 0.08 * (high - low or 1.0)
    ax.plot([low, high], [low, high], linestyle="--", color="0.5", linewidth=1, label=f"{metric} = {rr_key}",
            zorder=2)
    ax.set_xlim(low - pad if low < 0 else 0, high + pad)
    ax.set_ylim(low - pad if low < 0 else 0, high + pad)
    better = "lower" if metric_direction(metric) == "asc" else "higher"
    if metric == "FID":
        ax.set_xlabel("FID_rr: real-real lower bound (FID between two sets of real images)")
        ax.set_ylabel("FID: synthetic vs real images")
    else:
        ax.set_xlabel(f"{rr_key}: the same figure between two sets of real images")
        ax.set_ylabel(f"{metric}: synthetic vs real images")
    ax.set_title(f"{metric} of each model against its real-real figure ({better} is better)")
    ax.grid(True, alpha=0.3)
    if rows:
        ax.legend(title="modality", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    notes = []
    if any(r["derived"] for r in rows):
        notes.append("FID_rr = FID_ratio x FID where the catalog gives no FID_rr (medigan: FID_ratio = FID_rr / FID).")
    if any(r["ci"] is not None for r in rows):
        notes.append(f"Error bars: the catalog's bootstrap interval ({metric}_ci).")
    notes.append(f"Points are labelled by model number. {metric} values as given in the catalog, computed on different "
                 "real sets and numbers of images: compare with care.")
    if skipped:
        shown = ", ".join(s.split("_", 1)[0] for s in skipped)
        notes.append(f"Not shown (no {metric} or no real-real figure): {shown}.")
    fig.text(0.09, 0.02, "\n".join(notes), fontsize=7.5, va="bottom", wrap=True)
    if save_path is not None:
        fig.savefig(save_path, dpi=100)
    return fig
