"""The ``Generators`` facade: every user-facing method, thin, delegating (medigan's API, kept)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import ConfigManager, RefreshResult
from .contributing import StepwiseContribution
from .errors import SelectionError
from .selection import ModelSelector, Ranking, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from .datasets.build import DatasetBuild
    from .execution import ModelExecutor
    from .golden import GoldenCheck
    from .outputs import GenerationRun

logger = logging.getLogger("medhub.generators")


class Generators(StepwiseContribution):
    """Search, rank and run the models of the medhub catalog.

    Drop-in for medigan's ``Generators``: medigan code keeps working after changing the import.

    Args:
        config_manager: a :class:`~medhub.config.ConfigManager` (default: the bundled catalog,
            or ``MEDHUB_CONFIG``).
        model_selector: a :class:`~medhub.selection.ModelSelector` over that catalog.
        model_executors: executors to start with (normally empty; created on first use).
        model_contributors: contributors to start with (medigan's parameter; see
            :meth:`add_model_contributor`).
        initialize_all_models: create an executor for every model up front (medigan's flag;
            packages are still imported only when first run).
        config_file: path of a catalog to use instead of the bundled one.

    Example:
        >>> g = Generators()
        >>> "00101_DCGAN_BRAIN_MRI_T1" in g.find_model(["brain", "mri"], "AND").model_ids
        True
    """

    def __init__(
        self,
        config_manager: ConfigManager | None = None,
        model_selector: ModelSelector | None = None,
        model_executors: list[ModelExecutor] | None = None,
        model_contributors: list[Any] | None = None,
        initialize_all_models: bool = False,
        config_file: str | os.PathLike[str] | None = None,
    ) -> None:
        self.config_manager = config_manager or ConfigManager(config_file)
        self.model_selector = model_selector or ModelSelector(self.config_manager)
        self.model_executors: list[ModelExecutor] = list(model_executors or [])
        self.model_contributors = list(model_contributors or [])
        if initialize_all_models:
            self.add_all_model_executors()

    # ------------------------------------------------------------------ catalog
    def get_config_by_id(self, model_id: str | int, config_key: str | None = None) -> Any:
        """Catalog entry of a model, or the part below a dotted key.

        Example:
            >>> Generators().get_config_by_id(101, "execution.generate_method.name")
            'generate'
        """
        return self.config_manager.get_config_by_id(model_id, config_key=config_key)

    def list_models(self) -> list[str]:
        """All model ids of the catalog.

        Example:
            >>> "00101_DCGAN_BRAIN_MRI_T1" in Generators().list_models()
            True
        """
        return list(self.config_manager.model_ids)

    def refresh_catalog(self, url: str | None = None, timeout: float = 10.0) -> RefreshResult:
        """Fetch a newer catalog (see :meth:`ConfigManager.refresh`); executors of changed entries are dropped."""
        before = {m: self.config_manager.config_dict[m] for m in self.config_manager.model_ids}
        result = self.config_manager.refresh(url=url, timeout=timeout)
        if result.updated:
            self.model_executors = [
                e for e in self.model_executors if before.get(e.model_id) == self.config_manager.config_dict.get(e.model_id)
            ]
        return result

    # ------------------------------------------------------------------ selection
    def get_selection_criteria_by_id(self, model_id: str, is_model_id_removed: bool = True) -> dict:
        """The ``selection`` object of one model."""
        return self.model_selector.get_selection_criteria_by_id(model_id, is_model_id_removed)

    def get_selection_criteria_by_ids(self, model_ids: list[str] | None = None, are_model_ids_removed: bool = True) -> list:
        """The ``selection`` objects of several models (all when ``model_ids`` is None)."""
        return self.model_selector.get_selection_criteria_by_ids(model_ids, are_model_ids_removed)

    def get_selection_values_for_key(self, key: str, model_id: str | None = None) -> list:
        """Values of a dotted selection key, e.g. ``get_selection_values_for_key("modality")``."""
        return self.model_selector.get_selection_values_for_key(key, model_id)

    def get_selection_keys(self, model_id: str | None = None) -> list[str]:
        """First-level keys of the selection config."""
        return self.model_selector.get_selection_keys(model_id)

    def get_models_by_key_value_pair(self, key1: str, value1: Any, is_case_sensitive: bool = False) -> list[dict]:
        """Models whose selection value at ``key1`` equals (or holds) ``value1``."""
        return self.model_selector.get_models_by_key_value_pair(key1, value1, is_case_sensitive)

    def rank_models_by_performance(self, model_ids: list[str] | None = None, metric: str = "FID",
                                   order: str | None = None) -> Ranking:
        """Rank models by a performance metric, best first (order follows the metric unless given).

        Example:
            >>> ranking = Generators().rank_models_by_performance(metric="FID")
            >>> sorted(ranking[0])
            ['FID', 'model_id']
        """
        return self.model_selector.rank_models_by_performance(model_ids, metric, order)

    def find_matching_models_by_values(self, values: list[str] | str, target_values_operator: str = "AND",
                                       are_keys_also_matched: bool = False, is_case_sensitive: bool = False) -> SearchResult:
        """Search the selection configs for ``values`` combined with AND / OR / XOR."""
        return self.model_selector.find_matching_models_by_values(values, target_values_operator,
                                                                  are_keys_also_matched, is_case_sensitive)

    def find_model(self, values: list[str] | str, operator: str = "AND") -> SearchResult:
        """Search as written in the medigan paper: ``find_model(["brain", "mri"], "AND")``."""
        return self.model_selector.find_model(values, operator)

    def find_models_and_rank(self, values: list[str] | str, target_values_operator: str = "AND",
                             are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                             metric: str = "FID", order: str | None = None) -> Ranking:
        """Search, then rank the matches by ``metric``."""
        matches = self.find_matching_models_by_values(values, target_values_operator, are_keys_also_matched,
                                                      is_case_sensitive)
        if not matches:
            logger.warning("No model matches %s (%s); nothing to rank.", values, target_values_operator)
            return Ranking([], metric=metric)
        return self.rank_models_by_performance(matches.model_ids, metric, order)

    def find_models_rank_and_generate(self, values: list[str] | str, target_values_operator: str = "AND",
                                      are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                                      metric: str = "FID", order: str | None = None, num_samples: int = 30,
                                      output_path: str | None = None, is_gen_function_returned: bool = False,
                                      install_dependencies: bool = False, **kwargs: Any) -> Any:
        """Search, rank, and generate with the best-ranked model."""
        ranked = self.find_models_and_rank(values, target_values_operator, are_keys_also_matched, is_case_sensitive,
                                           metric, order)
        if not ranked:
            raise SelectionError(
                f"No model matches {values} ({target_values_operator}) and has a value for {metric!r}; "
                "loosen the search or choose another metric."
            )
        best = ranked[0]["model_id"]
        logger.info("Generating with the best-ranked model %s (%s=%s)", best, metric, ranked[0][metric])
        return self.generate(best, num_samples=num_samples, output_path=output_path,
                             is_gen_function_returned=is_gen_function_returned,
                             install_dependencies=install_dependencies, **kwargs)

    def find_model_and_generate(self, values: list[str] | str, target_values_operator: str = "AND",
                                are_keys_also_matched: bool = False, is_case_sensitive: bool = False,
                                num_samples: int = 30, output_path: str | None = None,
                                is_gen_function_returned: bool = False, install_dependencies: bool = False,
                                **kwargs: Any) -> Any:
        """Search; if exactly one model matches, generate with it. No match: a warning and None, as in
        medigan; several: raise, naming the matches."""
        matches = self.find_matching_models_by_values(values, target_values_operator, are_keys_also_matched,
                                                      is_case_sensitive)
        if not matches:
            logger.warning("No model matches %s (%s); nothing was generated. Adjust the search values.", values,
                           target_values_operator)
            return None
        if len(matches) != 1:
            found = ", ".join(matches.model_ids) or "none"
            raise SelectionError(
                f"{len(matches)} models match {values} ({target_values_operator}); exactly one is needed. "
                f"Matches: {found}. Add search values or use find_models_rank_and_generate()."
            )
        return self.generate(matches[0].model_id, num_samples=num_samples, output_path=output_path,
                             is_gen_function_returned=is_gen_function_returned,
                             install_dependencies=install_dependencies, **kwargs)

    # ------------------------------------------------------------------ execution
    def find_model_executor_by_id(self, model_id: str | int) -> ModelExecutor | None:
        """The executor already created for ``model_id``, or None."""
        full = self.config_manager.resolve_model_id(model_id)
        return next((e for e in self.model_executors if e.model_id == full), None)

    def is_model_executor_already_added(self, model_id: str | int) -> bool:
        return self.find_model_executor_by_id(model_id) is not None

    def add_model_executor(self, model_id: str | int, install_dependencies: bool = False,
                           package_path: str | os.PathLike[str] | None = None) -> None:
        """Create the executor of ``model_id`` if there is none yet.

        ``install_dependencies`` pip-installs the model's missing dependencies now (medigan's flag;
        the command is logged); otherwise a missing one is reported when the model first runs.
        """
        if not self.is_model_executor_already_added(model_id):
            from .execution.ref import executor_for

            self.model_executors.append(executor_for(self.config_manager, model_id, package_path))
        if install_dependencies:
            from .execution.deps import ensure_dependencies

            executor = self.find_model_executor_by_id(model_id)
            assert executor is not None
            ensure_dependencies(executor.model_id, executor.dependencies, install=True)

    def add_all_model_executors(self) -> None:
        for model_id in self.config_manager.model_ids:
            self.add_model_executor(model_id)

    def get_model_executor(self, model_id: str | int, install_dependencies: bool = False,
                           package_path: str | os.PathLike[str] | None = None) -> ModelExecutor:
        """The executor of ``model_id``, created on first use and kept (weights load once).

        ``install_dependencies`` pip-installs the model's missing dependencies now (medigan's flag).
        ``package_path`` runs the model from a local package folder instead of the catalog's link.
        """
        existing = self.find_model_executor_by_id(model_id)
        if existing is not None and existing.package_path != package_path:
            self.model_executors.remove(existing)
            existing = None
        if existing is None or install_dependencies:
            self.add_model_executor(model_id, install_dependencies, package_path=package_path)
            existing = self.find_model_executor_by_id(model_id)
        assert existing is not None
        return existing

    def generate(self, model_id: str | int, num_samples: int = 30, output_path: str | os.PathLike[str] | None = None,
                 save_images: bool = True, is_gen_function_returned: bool = False, install_dependencies: bool = False,
                 seed: int | None = None, device: str = "auto", batch_size: int | None = None,
                 trust_remote_code: bool = False, shard: str | tuple[int, int] | None = None,
                 output_format: str | None = None,
                 **kwargs: Any) -> list[Any] | GenerationRun | Callable[..., Any]:
        """Generate samples with a model.

        Args:
            model_id: full id, or its number (``101``, ``"101"``, ``"00101"``).
            num_samples: how many samples (a positive integer).
            output_path: folder to write into; it must not exist or be empty. Default: a new
                folder under ``MEDHUB_HOME/outputs/<model_id>/``.
            save_images: write files (PNG / NIfTI, ``manifest.csv``, ``provenance.json``) and
                return a :class:`~medhub.outputs.GenerationRun`; if False, return the samples as
                a list (arrays, or tuples ``(image, mask, ..., label)``) as medigan does.
            is_gen_function_returned: return a callable that generates with these arguments
                (keyword arguments given to it override them).
            install_dependencies: pip-install missing package dependencies (the command is logged).
            seed: run seed; sample i depends only on (seed, i) for ``medhub/1`` packages.
                None draws a random seed, recorded in the provenance.
            device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``.
            batch_size: samples per call into the model (default: the catalog's, else 32).
            trust_remote_code: run a remote package that has no sha256 pinned in the catalog
                (such as the medigan models); its sha256 is recorded and later changes refused.
                ``MEDHUB_TRUST_REMOTE_CODE=1`` does the same.
            shard: ``"K/N"`` (or ``(K, N)``, or ``"auto"`` for torchrun's RANK / WORLD_SIZE or a
                SLURM array): generate only shard K of N of the run into the shared
                ``output_path`` (needs ``seed``); the shards together give the same files as one
                run, and running a shard again resumes it (see :mod:`medhub.runs.shards`).
            output_format: write every image, mask and volume as ``"png"`` (2D only), ``"nifti"``,
                ``"npy"`` or ``"dicom"`` (Secondary Capture images and Segmentations; needs
                ``pip install 'medhub[dicom]'``). None (default): PNG for 2D outputs, NIfTI for volumes.
            **kwargs: model inputs (e.g. ``condition``), and ``progress`` (bool),
                ``package_path`` (run a local package folder), ``cpu_streams`` (an opt-in: that
                many package calls at once on the CPU for packages declared thread safe, each on a
                share of torch's threads, restored afterwards; default 1 or ``MEDHUB_CPU_STREAMS``)
                and ``mark`` (default True: every file carries its sample record and says it is
                synthetic, see :mod:`medhub.outputs.marks`; False leaves the marks out, as
                ``provenance.json`` records).

        Example:
            >>> images = Generators().generate(101, num_samples=2, save_images=False, seed=0)
            >>> images[0].dtype
            dtype('uint8')
        """
        package_path = kwargs.pop("package_path", None)
        executor = self.get_model_executor(model_id, package_path=package_path)
        run = dict(num_samples=num_samples, output_path=output_path, save_images=save_images, seed=seed, device=device,
                   batch_size=batch_size, shard=shard, output_format=output_format, **kwargs)
        if not is_gen_function_returned:
            return _run(executor, install_dependencies=install_dependencies, trust_remote_code=trust_remote_code, **run)
        # medigan's flag: a callable that generates with these arguments, checked now (before any work)
        from .runs.common import check_model, check_options

        check_options(num_samples, seed, batch_size, output_format,
                      output_path if save_images and shard is None else None)
        check_model(executor, {k: v for k, v in kwargs.items() if k not in _RUN_OPTIONS}, install_dependencies,
                    trust_remote_code)

        def generate_function(**overrides: Any) -> list[Any] | GenerationRun:
            return _run(executor, **{**run, **overrides})

        generate_function.__doc__ = f"Generate samples with {executor.model_id}; keyword arguments override {sorted(run)}."
        return generate_function

    def verify_model(self, model_id: str | int) -> GoldenCheck:
        """Regenerate the model's golden samples (catalog ``execution.golden``) on the CPU and compare
        their sha256; ``.equal`` says whether they are bit-identical. See :mod:`medhub.golden`."""
        from .golden import check_golden

        return check_golden(self, model_id)

    def get_generate_function(self, model_id: str | int, num_samples: int = 30,
                              output_path: str | os.PathLike[str] | None = None, install_dependencies: bool = False,
                              **kwargs: Any) -> Callable[..., Any]:
        """A callable that generates with ``model_id`` (``generate(..., is_gen_function_returned=True)``)."""
        return self.generate(model_id, num_samples=num_samples, output_path=output_path,  # type: ignore[return-value]
                             is_gen_function_returned=True, install_dependencies=install_dependencies, **kwargs)

    def generate_on_ray(self, model_id: str | int, num_samples: int, output_path: str | os.PathLike[str],
                        seed: int | None = None, **kwargs: Any) -> GenerationRun:
        """Generate on a Ray cluster (one model load per worker) into a shared folder or fsspec URL.

        Same files, names and bytes as :meth:`generate` with the same seed; calling it again after a
        failure resumes. Options (``num_workers``, ``address``, ``device``, ``batch_size``,
        ``chunk_size``, ``storage_options``...): see :func:`medhub.runs.distributed.generate_on_ray`.
        Needs ``pip install 'medhub[ray]'``.
        """
        from .runs.distributed import generate_on_ray

        return generate_on_ray(model_id, num_samples, output_path, seed, get_executor=self.get_model_executor,
                               **kwargs)

    def export_dataset(self, models: list[str | int] | str | int, layout: str, output_path: str | os.PathLike[str],
                       seed: int | None = None, num_samples: int | None = None, **kwargs: Any) -> DatasetBuild:
        """Build a synthetic training set in the layout of a training framework (``medhub dataset``).

        Args:
            models: model ids with counts (``["104:300", "107:20"]``), or one model with ``num_samples``.
            layout: ``"nnunet"`` (nnU-Net v2), ``"monai"`` (decathlon datalist), ``"hf"`` (imagefolder) or ``"folder"``.
            output_path: a new or empty folder; it appears whole or not at all.
            seed: the same seed gives a byte-identical dataset (with ``SOURCE_DATE_EPOCH`` set).
            num_samples: the number of cases of a single model.
            **kwargs: ``name`` (nnU-Net: ``DatasetNNN_Name``), ``val_fraction``, ``balance``, ``add_real`` (real
                cases, copied unchanged), ``shard`` (``"K/N"``), ``device``, ``batch_size``, ``progress``...

        Example:
            >>> import tempfile
            >>> build = Generators().export_dataset(104, "nnunet", tempfile.mkdtemp() + "/raw", seed=0, num_samples=2,
            ...                                     name="Dataset501_SynthT1", progress=False, device="cpu")
            >>> sorted(p.name for p in (build.dataset_path / "labelsTr").iterdir())
            ['syn_000000.png', 'syn_000001.png']
        """
        from .datasets.build import export_dataset

        listed = models if isinstance(models, (list, tuple)) else [models]
        return export_dataset(self.get_model_executor, self.get_config_by_id, listed, layout, output_path, seed,
                              num_samples, **kwargs)

    def prefetch(self, model_ids: list[str | int] | str | int, trust_remote_code: bool = False,
                 progress: bool | None = None, force: bool = False) -> dict[str, str]:
        """Download, verify and extract remote packages now, for later offline use.

        Returns ``{model_id: package folder}``; shipped packages are listed where they are.
        ``force`` fetches remote packages and Hub snapshots again (what to do after medhub refused a
        cached copy that was changed): the package is extracted again from its verified archive, a
        Hub snapshot downloaded again and checked against the Hub's listing of the commit.

        Example:
            >>> Generators().prefetch([101])  # doctest: +ELLIPSIS
            {'00101_DCGAN_BRAIN_MRI_T1': '.../00101_DCGAN_BRAIN_MRI_T1'}
        """
        from .execution.cache import PackageCache
        from .execution.hub import HubSource, is_hub_link
        from .execution.resolve import is_remote_link

        ids = [model_ids] if isinstance(model_ids, (str, int)) else list(model_ids)
        cache = PackageCache()
        out = {}
        for given in ids:
            model_id = self.config_manager.resolve_model_id(given)
            execution = self.config_manager.config_dict[model_id]["execution"]
            if is_remote_link(execution["package_link"]):
                if force:
                    cache.discard_extracted(model_id)
                out[model_id] = str(cache.fetch(model_id, execution, trust_remote_code=trust_remote_code,
                                                progress=progress))
            else:  # shipped and local folders; Hub snapshots (hf://), which the executor fetches
                if force and is_hub_link(execution["package_link"]):
                    HubSource().fetch(model_id, execution, trust_remote_code=trust_remote_code, force=True)
                executor = self.get_model_executor(model_id)
                executor.prepare(trust_remote_code=trust_remote_code)
                out[model_id] = str(executor.package_folder)
        return out

    # ------------------------------------------------------------------ torch datasets and visualization
    # Thin wrappers over medhub.data (torch) and medhub.visualize (matplotlib); both modules are
    # imported on first call only, so `import medhub` stays light. Keep this block at the end of
    # the class.
    def get_as_torch_dataset(self, model_id: str | int, num_samples: int | None = 100, install_dependencies: bool = False,
                             transform: Callable[[Any], Any] | None = None, seed: int = 0, **kwargs: Any) -> Any:
        """A lazy torch ``Dataset`` of ``num_samples`` samples (medigan's method; item i depends on (seed, i)).

        Items are dicts ``{"sample": (C, H, W) float tensor, "mask": ..., "label": ...}``, generated a
        chunk at a time on first access. ``iterable=True`` gives an ``IterableDataset`` (endless when
        ``num_samples`` is None). Other options (``chunk_size``, ``device``, ``item_transform``, model
        inputs...): see :func:`medhub.data.get_as_torch_dataset`.

        Example:
            >>> ds = Generators().get_as_torch_dataset(101, num_samples=1000, seed=0)
            >>> len(ds), tuple(ds[0]["sample"].shape)
            (1000, (1, 64, 64))
        """
        from .data import get_as_torch_dataset

        return get_as_torch_dataset(model_id, num_samples, install_dependencies, transform, seed,
                                    get_executor=self.get_model_executor, **kwargs)

    def get_as_torch_dataloader(self, dataset: Any = None, model_id: str | int | None = None, num_samples: int | None = 1000,
                                install_dependencies: bool = False, transform: Callable[[Any], Any] | None = None,
                                batch_size: int | None = None, shuffle: bool | None = None, sampler: Any = None,
                                batch_sampler: Any = None, num_workers: int | None = None, collate_fn: Any = None,
                                pin_memory: bool | None = None, drop_last: bool | None = None, timeout: float | None = None,
                                worker_init_fn: Any = None, prefetch_factor: int | None = None,
                                persistent_workers: bool | None = None, seed: int = 0, **kwargs: Any) -> Any:
        """A torch ``DataLoader`` over a lazy synthetic dataset (medigan's method and parameter order: ``dataset``,
        an existing Dataset, or ``model_id``; a model id given first is taken as ``model_id``). DataLoader arguments
        reach it only when given (not None); other keyword arguments are model inputs. See
        :func:`medhub.data.get_as_torch_dataloader`.

        Example:
            >>> loader = Generators().get_as_torch_dataloader(None, "00101", 64, batch_size=32)
            >>> [tuple(b["sample"].shape) for b in loader]
            [(32, 1, 64, 64), (32, 1, 64, 64)]
        """
        from .data import LOADER_PARAMETERS, get_as_torch_dataloader

        # medigan's DataLoader parameters are named above for its positional calls; those given go on by name
        loader = {k: v for k, v in locals().items() if k in LOADER_PARAMETERS and v is not None}
        dataset, model_id = (None, dataset) if model_id is None else (dataset, model_id)
        return get_as_torch_dataloader(model_id, num_samples, install_dependencies, transform, seed, dataset=dataset,
                                       get_executor=self.get_model_executor, **kwargs, **loader)

    def visualize(self, model_id: str | int, slider_grouper: int = 10, auto_close: bool = False,
                  install_dependencies: bool = False, seed: int | None = None,
                  save_path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        """Latent-space explorer of a model: sliders over groups of latent dimensions (medigan's method).

        Returns the :class:`medhub.visualize.LatentExplorer`; see :func:`medhub.visualize.visualize`.
        """
        from .visualize import visualize

        return visualize(model_id, slider_grouper, auto_close, install_dependencies, seed, save_path,
                         get_executor=self.get_model_executor, **kwargs)

    def plot_samples(self, model_id: str | int, n: int = 16, seed: int = 0, **kwargs: Any) -> Any:
        """A matplotlib Figure with a grid of ``n`` samples (mid slices of volumes); see
        :func:`medhub.visualize.plot_samples`."""
        from .visualize import plot_samples

        return plot_samples(model_id, n, seed, get_executor=self.get_model_executor, **kwargs)

    def plot_fid_overview(self, model_ids: list[str | int] | None = None, **kwargs: Any) -> Any:
        """A matplotlib Figure: each model's FID against its real-real lower bound, by modality;
        see :func:`medhub.visualize.plot_fid_overview`."""
        from .visualize import plot_fid_overview

        return plot_fid_overview(model_ids, catalog=self.config_manager, **kwargs)

    # ------------------------------------------------------------------ model contribution
    # Thin wrappers over medhub.contribute (imported on first call; PyGithub only when an issue is
    # searched or opened). See docs/contributing-models.md. One block, kept together.
    def contribute(self, model_id: str, init_py_path: str | os.PathLike[str], github_access_token: str | None = None,
                   zenodo_access_token: str | None = None, metadata_file_path: str | os.PathLike[str] | None = None,
                   model_weights_name: str | None = None, model_weights_extension: str | None = None,
                   generate_method_name: str | None = None, dependencies: list[str] | None = None,
                   fill_more_fields_interactively: bool = False, overwrite_existing_metadata: bool = False,
                   output_path: str | os.PathLike[str] | None = None, creator_name: str | None = None,
                   creator_affiliation: str | None = None, model_description: str | None = None,
                   install_dependencies: bool = False, *, dry_run: bool = False, publish: bool | None = None,
                   sandbox: bool = False, interactive: bool = False, metadata_fields: dict[str, Any] | None = None,
                   zenodo_url: str | None = None, github_url: str | None = None, github_repo: str | None = None,
                   zenodo_deposition_id: int | None = None, package_link: str | None = None, num_samples: int = 3,
                   device: str = "cpu") -> Any:
        """Publish a model in one call: validate, test, zip, upload to Zenodo, open the GitHub issue.

        medigan's parameters keep their meaning; tokens default to ``ZENODO_ACCESS_TOKEN`` and
        ``GITHUB_TOKEN``. Steps and their errors: :mod:`medhub.contribute.contributor`.

        Args:
            model_id: the new id, ``NNNNN_NAME`` with a number free in the catalog.
            init_py_path: the package's ``__init__.py`` (or its folder).
            metadata_file_path: the catalog entry as JSON (default: the package's ``metadata.json``,
                else one built from the template and the arguments).
            github_access_token: GitHub token (default ``GITHUB_TOKEN``).
            zenodo_access_token: Zenodo token (default ``ZENODO_ACCESS_TOKEN``).
            model_weights_name: weights file name without extension (as in medigan; overrides the
                metadata file, like the next six arguments).
            model_weights_extension: weights file extension, e.g. ``.safetensors``.
            generate_method_name: name of the medigan-style generate function.
            dependencies: PEP 508 requirements of the package.
            creator_name: author named on Zenodo and in the catalog entry.
            creator_affiliation: the author's affiliation.
            model_description: description for Zenodo and the issue.
            fill_more_fields_interactively: prompt for missing metadata and for the publication
                (medigan's name; same as ``interactive``). Without it nothing is asked: missing
                fields raise an error listing them.
            overwrite_existing_metadata: accept the id of a catalog model (a new version of it).
            output_path: folder for the archive and ``<id>.entry.json`` (default
                ``MEDHUB_HOME/contributions/<id>``).
            install_dependencies: pip-install the package's missing dependencies for its test.
            dry_run: validate, test and zip only; no network request at all.
            publish: publish the Zenodo deposition (True), leave it a draft (False), or ask when
                interactive (None; a draft otherwise). No issue is opened for a draft.
            sandbox: use https://sandbox.zenodo.org (its own tokens).
            interactive: prompt for missing metadata and for the publication.
            metadata_fields: dotted keys to set, e.g. ``{"selection.modality": ["MRI"]}``.
            zenodo_url: Zenodo base URL (default ``MEDHUB_ZENODO_URL``, else https://zenodo.org).
            github_url: GitHub API URL (default ``MEDHUB_GITHUB_URL``, e.g. GitHub Enterprise's
                ``https://HOST/api/v3``).
            github_repo: ``owner/name`` receiving the issue (default ``MEDHUB_GITHUB_REPO``).
            zenodo_deposition_id: resume a draft deposition after a failed step.
            package_link: the download URL of an already published archive: skip Zenodo, check
                that archive against the rebuilt one, open the issue only.
            num_samples: samples generated by the test run.
            device: device of the test run.

        Returns:
            a :class:`~medhub.contribute.ContributionResult`: ``record_id``, ``download_url``,
            ``issue_url``, the catalog ``entry`` (sha256, size, link), ``archive_path``, ``done``.
        """
        from .contribute import ModelContributor

        contributor = ModelContributor(model_id, init_py_path, self.config_manager,
                                       interactive=interactive or fill_more_fields_interactively)
        return contributor.contribute(
            metadata_file_path, zenodo_access_token=zenodo_access_token, github_access_token=github_access_token,
            model_weights_name=model_weights_name, model_weights_extension=model_weights_extension,
            generate_method_name=generate_method_name, dependencies=dependencies, creator_name=creator_name,
            creator_affiliation=creator_affiliation, model_description=model_description,
            metadata_fields=metadata_fields, install_dependencies=install_dependencies,
            allow_existing=overwrite_existing_metadata, output_path=output_path, dry_run=dry_run, publish=publish,
            sandbox=sandbox, zenodo_url=zenodo_url, github_url=github_url, github_repo=github_repo,
            zenodo_deposition_id=zenodo_deposition_id, package_link=package_link, num_samples=num_samples,
            device=device)

    def test_model(self, model_id: str | int, is_local_model: bool = True, overwrite_existing_metadata: bool = False,
                   store_new_config: bool = True, num_samples: int = 3, install_dependencies: bool = False, *,
                   init_py_path: str | os.PathLike[str] | None = None,
                   metadata_file_path: str | os.PathLike[str] | None = None, seed: int = 0, device: str = "cpu",
                   trust_remote_code: bool = False) -> Any:
        """Generate ``num_samples`` samples twice with ``seed`` and check them against the outputs spec.

        With ``init_py_path``, tests a local package (its ``metadata.json``, or
        ``metadata_file_path``); otherwise the catalog model ``model_id``. medigan's
        ``is_local_model``, ``overwrite_existing_metadata`` and ``store_new_config`` are accepted
        and ignored: medhub never writes into its catalog. Returns a
        :class:`~medhub.contribute.TestReport`; raises :class:`~medhub.errors.ModelTestError`.
        """
        from .contribute import test_model

        return test_model(self, model_id, num_samples, install_dependencies, init_py_path=init_py_path,
                          metadata_file_path=metadata_file_path, seed=seed, device=device,
                          trust_remote_code=trust_remote_code)

    def __repr__(self) -> str:
        return (f"Generators(catalog={self.config_manager.catalog_version!r}, models={len(self.config_manager.model_ids)}, "
                f"executors={len(self.model_executors)})")

    def __len__(self) -> int:
        return len(self.model_executors)

    def __getitem__(self, idx: int) -> ModelExecutor:
        return self.model_executors[idx]


#: Options of a run that are not model inputs (given to ``generate`` as keyword arguments).
_RUN_OPTIONS = ("progress", "cpu_streams", "mark", "sign")


def _run(executor: ModelExecutor, save_images: bool = True, shard: Any = None, output_path: Any = None,
         output_format: str | None = None, mark: bool = True, sign: Any = None,
         **options: Any) -> list[Any] | GenerationRun:
    """medigan's ``save_images`` and medhub's ``shard`` mapped onto the runs' entry points, each of
    which returns one type (:mod:`medhub.runs`)."""
    if shard is not None:
        from .runs.shards import generate_shard

        return generate_shard(executor, shard, output_path=output_path, output_format=output_format, mark=mark,
                              sign=sign, save_images=save_images, **options)
    if not save_images:
        from .outputs.specs import check_format
        from .runs.single import generate_samples

        check_format(output_format)
        return generate_samples(executor, **options)
    from .runs.single import generate_files

    return generate_files(executor, output_path=output_path, output_format=output_format, mark=mark, sign=sign,
                          **options)

