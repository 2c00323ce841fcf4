"""The ``medhub`` command.

Exit codes (one rule, see docs/cli.md): 0 success; 2 what you typed is wrong, found before any
work (usage, an option or ``--arg``, a ``MEDHUB_*`` setting, a device, a config key); 1 the work
failed (catalog, download, package, dependency, generation, disk); 3 unknown model id or no match;
130 interrupted. Every error is one line on stderr. ``--json`` prints machine-readable output;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from .output_options import add_output_options, output_options

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    """argparse with medhub's one-line errors (``medhub: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"medhub: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def exit_code(exc: BaseException) -> int:
    """The exit status of the ``medhub`` command for an error (the rule of docs/cli.md).

    Example:
        >>> from medhub.errors import DeviceError, DownloadError, ModelNotFoundError
        >>> exit_code(DeviceError("x")), exit_code(DownloadError("x")), exit_code(ModelNotFoundError("x"))
        (2, 1, 3)
    """
    from .errors import ConfigKeyError, MedhubError, ModelNotFoundError

    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, ModelNotFoundError):
        return EXIT_NOT_FOUND
    if isinstance(exc, MedhubError) and isinstance(exc, (ValueError, ConfigKeyError)):
        return EXIT_USAGE  # InvalidArgumentError, DeviceError, SettingError, SelectionError, ...
    return EXIT_ERROR


def _common() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs")
    common.add_argument("--config", default=argparse.SUPPRESS, metavar="FILE", help="catalog file (default: MEDHUB_CONFIG or the bundled one)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="medhub", description="Pretrained generative models for medical image synthesis.",
                                     parents=[common])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sub.add_parser("list", parents=[common], help="list the models of the catalog")

    p = sub.add_parser("search", parents=[common], help="search models by keywords")
    p.add_argument("values", nargs="+", help="search values, e.g. brain mri")
    p.add_argument("--operator", "-O", default="AND", type=str.upper, choices=["AND", "OR", "XOR"])
    p.add_argument("--keys", action="store_true", help="match keys of the selection config too")
    p.add_argument("--case-sensitive", action="store_true")

    p = sub.add_parser("rank", parents=[common], help="rank models by a performance metric")
    p.add_argument("--metric", "-m", default="FID", help="metric key, dotted for nested ones (default FID)")
    p.add_argument("--order", choices=["asc", "desc"], help="default: the metric's direction")
    p.add_argument("--models", nargs="+", metavar="ID", help="only rank these models")

    p = sub.add_parser("info", parents=[common], help="show a model's catalog entry")
    p.add_argument("model_id")
    p.add_argument("--key", help="dotted config key, e.g. execution.outputs")

    p = sub.add_parser("generate", parents=[common], help="generate samples with a model")
    p.add_argument("model_id")
    p.add_argument("-n", "--num-samples", type=int, default=30)
    p.add_argument("-o", "--output", help="output folder (must not exist or be empty)")
    p.add_argument("--seed", type=int, help="run seed (default: random, recorded in provenance.json)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--install-dependencies", action="store_true", help="pip-install missing model dependencies")
    p.add_argument("--package-path", help="run a local package folder instead of the catalog's")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="model input, VALUE parsed as JSON when it can be (repeatable)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run a remote package that has no pinned sha256 (its sha256 is recorded)")
    p.add_argument("--shard", metavar="K/N", help="generate shard K of N into the shared output folder (needs --seed "
                                                   "and -o); 'auto' reads torchrun's or SLURM's variables")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="ray: generate on a Ray cluster, one model load per worker (needs -o; pip install 'medhub[ray]')")
    p.add_argument("--address", help="Ray cluster address, e.g. auto or ray://head:10001 (default: RAY_ADDRESS, "
                                     "else a local Ray instance)")
    p.add_argument("--workers", type=int, metavar="N", help="Ray workers (default: one per GPU, else one per CPU)")
    add_output_options(p)

    p = sub.add_parser("merge-manifests", parents=[common], help="join the manifest parts of a sharded run")
    p.add_argument("folder")

    p = sub.add_parser("prefetch", parents=[common], help="download remote packages now, for offline use")
    p.add_argument("model_ids", nargs="+", metavar="MODEL_ID")
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--force", action="store_true", help="fetch again what is cached (after medhub refused a changed "
                                                         "package or Hub snapshot)")

    p = sub.add_parser("cache", parents=[common], help="inspect and clean the package cache (MEDHUB_HOME)")
    cache_sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    cache_sub.add_parser("ls", parents=[common], help="list cached packages")
    cache_sub.add_parser("verify", parents=[common], help="check archives and packages against their sha256")
    rm = cache_sub.add_parser("rm", parents=[common], help="remove a model's cached package and trust record")
    rm.add_argument("model_id")
    prune = cache_sub.add_parser("prune", parents=[common], help="remove leftovers of killed runs and downloads, and "
                                                                  "packages not in the catalog")
    prune.add_argument("--outputs", action="append", default=[], metavar="FOLDER",
                       help="also remove staging folders of killed runs under FOLDER (repeatable; MEDHUB_HOME/outputs "
                            "is always searched)")

    p = sub.add_parser("hub", parents=[common], help="models of the Hugging Face Hub: draft a catalog entry")
    draft = p.add_subparsers(dest="hub_command", metavar="ACTION", required=True).add_parser(
        "draft", parents=[common], help="draft the catalog entry of a MONAI bundle or diffusers pipeline (prints JSON)")
    draft.add_argument("link", metavar="hf://OWNER/REPO[@REV]")
    draft.add_argument("--from", dest="from_dir", metavar="DIR", help="a local copy of the repository (no download)")
    draft.add_argument("--id", dest="model_id", default="00299_DRAFT", help="model id of the entry (default 00299_DRAFT)")
    draft.add_argument("--check", action="store_true", help="also validate the entry against the catalog schema")
    draft.add_argument("--trust-remote-code", action="store_true", help="allow running the repository's configs")

    p = sub.add_parser("refresh", parents=[common], help="fetch a newer catalog (MEDHUB_CATALOG_URL)")
    p.add_argument("--url")
    p.add_argument("--timeout", type=float, default=10.0)

    # -- figures (medhub.visualize; needs matplotlib: pip install 'medhub[viz]')
    p = sub.add_parser("grid", parents=[common], help="save a grid of a model's samples as an image")
    p.add_argument("model_id")
    p.add_argument("-o", "--output", required=True, help="image file to write, e.g. grid.png")
    p.add_argument("-n", "--num-samples", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ncols", type=int, help="columns of the grid (default: about sqrt(n))")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--package-path", help="run a local package folder instead of the catalog's")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="model input (repeatable)")
    p.add_argument("--install-dependencies", action="store_true", help="pip-install missing model dependencies")
    p.add_argument("--trust-remote-code", action="store_true", help="run a remote package that has no pinned sha256")
    p = sub.add_parser("plot", parents=[common], help="save a catalog plot as an image")
    p.add_argument("what", choices=["fid"], help="fid: each model's FID against its real-real bound")
    p.add_argument("-o", "--output", required=True, help="image file to write, e.g. fid.png")
    p.add_argument("--models", nargs="+", metavar="ID", help="only these models")

    p = sub.add_parser("fid", parents=[common], help="FID between a real and a synthetic image set")
    p.add_argument("real", help="folder of images, or model:ID:N")
    p.add_argument("synthetic", help="folder of images, or model:ID:N (N samples of model ID)")
    p.add_argument("--lower-bound", action="store_true", help="also FID_rr (real halves, or --reference) and r_FID")
    p.add_argument("--reference", help="a second real set (folder) for FID_rr at the synthetic set's size, "
                                       "e.g. training images when REAL is held out (implies --lower-bound)")
    from .evaluate.commands import add_extractor_options, add_parsers  # fid's options; evaluate, report

    add_extractor_options(p, "seed of model samples and of the real splits")
    add_parsers(sub, common)
    from .datasets.command import add_parser as add_dataset_parser

    add_dataset_parser(sub, common)

    # model contribution (tokens come from ZENODO_ACCESS_TOKEN / GITHUB_TOKEN only, never the command line)
    p = sub.add_parser("contribute", parents=[common], help="validate, test, zip and publish a model package")
    p.add_argument("model_id", help="the new model id, e.g. 00150_MY_GAN")
    p.add_argument("init_py_path", nargs="?", help="the package's __init__.py (or its folder); not with --hub")
    p.add_argument("--hub", metavar="OWNER/REPO", help="propose a model already on the Hugging Face Hub: opens the "
                                                      "catalog-entry issue only (no archive, no Zenodo)")
    p.add_argument("--revision", help="with --hub: the commit hash that pins the model (or a branch/tag, unpinned)")
    p.add_argument("--interface", choices=["diffusers", "monai-bundle"], help="with --hub: the package kind")
    p.add_argument("--from", dest="from_dir", metavar="DIR", help="with --hub: a local copy of the repository; the "
                                                                 "entry starts from `medhub hub draft` of it")
    p.add_argument("--metadata", metavar="FILE", help="metadata JSON (default: the package's metadata.json)")
    p.add_argument("--field", action="append", default=[], metavar="KEY=VALUE",
                   help="metadata field by dotted key, VALUE parsed as JSON when it can be (repeatable)")
    p.add_argument("--weights-name", help="weights file name without extension (medigan's model_weights_name)")
    p.add_argument("--weights-extension", help="weights file extension, e.g. .safetensors")
    p.add_argument("--generate-method", help="name of the medigan-style generate function")
    p.add_argument("--dependency", action="append", dest="dependencies", metavar="REQ",
                   help="PEP 508 requirement (repeatable; default: the metadata's, else requirements.txt)")
    p.add_argument("--creator-name")
    p.add_argument("--creator-affiliation")
    p.add_argument("--description", help="model description for Zenodo and the issue")
    p.add_argument("--dry-run", action="store_true", help="validate, test and zip only; no network request")
    p.add_argument("--publish", action="store_true", default=None,
                   help="publish on Zenodo without asking (default: ask with --interactive, else leave a draft)")
    p.add_argument("--interactive", action="store_true", help="prompt for missing metadata and before publishing")
    p.add_argument("--sandbox", action="store_true", help="use sandbox.zenodo.org")
    p.add_argument("--zenodo-url", help="Zenodo base URL (default MEDHUB_ZENODO_URL or https://zenodo.org)")
    p.add_argument("--github-url", help="GitHub API URL (default MEDHUB_GITHUB_URL or https://api.github.com)")
    p.add_argument("--github-repo", help="owner/name receiving the issue (default MEDHUB_GITHUB_REPO)")
    p.add_argument("--zenodo-deposition-id", type=int, metavar="ID", help="resume this draft deposition")
    p.add_argument("--package-link", metavar="URL", help="already published archive: open the issue only")
    p.add_argument("--new-version", action="store_true", help="the id is in the catalog: contribute a new version")
    p.add_argument("-o", "--output", help="folder for the archive and entry (default MEDHUB_HOME/contributions/ID)")
    p.add_argument("--install-dependencies", action="store_true")
    p.add_argument("-n", "--num-samples", type=int, default=3, help="samples generated by the test (default 3)")
    p.add_argument("--device", default="cpu", help="device of the test run (default cpu)")

    p = sub.add_parser("init-model", parents=[common], help="start a new model package from the template")
    p.add_argument("name", help="folder to create (also the model id when it is one)")
    p.add_argument("--id", dest="model_id", help="model id, e.g. 00150_MY_GAN (default: NAME)")
    p.add_argument("-o", "--output", default=".", help="parent folder (default: the current folder)")

    # the marks of medhub's files (medhub.verification) and a model's golden samples (medhub.golden)
    p = sub.add_parser("inspect", parents=[common], help="print the medhub mark (sample record) of files")
    p.add_argument("files", nargs="+", metavar="FILE", help="PNG, NIfTI or DICOM files")
    p = sub.add_parser("verify", parents=[common], help="regenerate the samples that files' marks name and compare, "
                                                       "or (--model) a model's golden samples")
    p.add_argument("files", nargs="*", metavar="FILE", help="PNG, NIfTI or DICOM files medhub wrote")
    p.add_argument("--model", dest="golden_model", metavar="ID",
                   help="instead of files: exit 0 if the model's 8 golden samples (seed 0, CPU) equal the catalog's, "
                        "1 if they differ")
    p.add_argument("--inputs", metavar="DIR", help="image-to-image models: the input folder the run was given "
                                                   "(default: the recorded one, else the package's examples)")
    p.add_argument("--device", help="where to regenerate (default: the kind of device recorded); another kind "
                                    "compares within the documented cross-device tolerance")

    sub.add_parser("version", parents=[common], help="print versions")
    return parser


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def check_model_arguments(g: Any, model_id: str, kwargs: dict[str, Any], package_path: str | None = None,
                          install_dependencies: bool = False, trust_remote_code: bool = False) -> None:
    """Refuse ``--arg`` names the model does not take, with the closest name (see
    :func:`medhub.execution.inputs.check_inputs`)."""
    from .execution.inputs import check_inputs

    if kwargs:
        check_inputs(g.get_model_executor(model_id, package_path=package_path), kwargs, "--arg",
                     install_dependencies, trust_remote_code)


def _run(args: argparse.Namespace) -> int:
    from .generators import Generators
    from .version import __version__

    if args.command == "version":
        import platform

        data = {"medhub": __version__, "python": platform.python_version()}
        try:
            from importlib.metadata import version

            data["torch"] = version("torch")
        except Exception:
            data["torch"] = None
        g = Generators(config_file=getattr(args, "config", None))
        data["catalog_version"] = g.config_manager.catalog_version
        data["catalog"] = str(g.config_manager.source)
        _emit(args, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
        return EXIT_OK

    g = Generators(config_file=getattr(args, "config", None))
    cm = g.config_manager
    if args.command == "list":
        rows = [{"model_id": m, "type": cm.config_dict[m]["selection"].get("type"),
                 "title": cm.config_dict[m]["description"].get("title")} for m in cm.model_ids]
        text = "\n".join(f"{r['model_id']:<40} {r['type'] or '':<12} {r['title']}" for r in rows)
        _emit(args, rows, text + f"\n{len(rows)} models (catalog {cm.catalog_version})")
        return EXIT_OK
    if args.command == "search":
        found = g.find_matching_models_by_values(args.values, args.operator, args.keys, args.case_sensitive)
        _emit(args, [{"model_id": m.model_id, "matched": m.matched_values} for m in found], str(found))
        return EXIT_OK if found else EXIT_NOT_FOUND
    if args.command == "rank":
        ranking = g.rank_models_by_performance(args.models, args.metric, args.order)
        _emit(args, list(ranking), str(ranking))
        return EXIT_OK if ranking else EXIT_NOT_FOUND
    if args.command == "info":
        model_id = cm.resolve_model_id(args.model_id)
        data = g.get_config_by_id(model_id, args.key)
        _emit(args, data, f"{model_id}\n{json.dumps(data, indent=2, ensure_ascii=False)}")
        return EXIT_OK
    if args.command == "verify" and (args.golden_model or not args.files):
        if args.files or not args.golden_model:
            from .errors import InvalidArgumentError

            raise InvalidArgumentError("medhub verify: give either FILE... (marked files) or --model ID (golden "
                                       "samples), not both or neither.")
        check = g.verify_model(args.golden_model)
        _emit(args, {"model_id": check.model_id, "equal": check.equal, "expected": check.expected,
                     "actual": check.actual}, str(check))
        return EXIT_OK if check.equal else EXIT_ERROR
    if args.command == "refresh":
        result = g.refresh_catalog(url=args.url, timeout=args.timeout)
        _emit(args, result.as_dict(), f"{result.status}: catalog {result.catalog_version} {result.reason}".rstrip())
        return EXIT_OK if result.status != "failed" else EXIT_ERROR
    if args.command == "prefetch":
        done = g.prefetch(args.model_ids, trust_remote_code=args.trust_remote_code,
                          progress=False if args.no_progress else None, force=args.force)
        _emit(args, done, "\n".join(f"{m}: {path}" for m, path in done.items()))
        return EXIT_OK
    if args.command == "cache":
        return _cache(args, g)
    if args.command == "hub":
        from .contribute.hub_draft import draft_hub_entry

        found = draft_hub_entry(args.link, args.from_dir, args.model_id, args.trust_remote_code)
        if args.check:
            found.check()
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
        return EXIT_OK
    if args.command == "fid":
        return _fid(args, g)
    if args.command == "dataset":
        from .datasets.command import run as run_dataset

        return run_dataset(args, g, _emit)
    if args.command in ("evaluate", "report"):
        from .evaluate.commands import run as run_evaluate

        return run_evaluate(args, g, _emit)
    if args.command in ("inspect", "verify"):
        from .verification import command

        return command(args, g, _emit)
    if args.command == "merge-manifests":
        from .outputs.manifest import merge_manifests

        path = merge_manifests(args.folder)
        _emit(args, {"manifest": str(path)}, f"wrote {path}")
        return EXIT_OK
    if args.command == "generate":
        from .validate import parse_model_args

        kwargs = parse_model_args(args.arg)
        check_model_arguments(g, args.model_id, kwargs, args.package_path, args.install_dependencies,
                              args.trust_remote_code)
        if args.package_path:
            kwargs["package_path"] = args.package_path
        if args.engine == "ray":
            run = _generate_on_ray(args, g, kwargs)
        else:
            if args.address is not None or args.workers is not None:
                from .errors import InvalidArgumentError

                raise InvalidArgumentError("--address and --workers apply to --engine ray only.")
            run = g.generate(args.model_id, num_samples=args.num_samples, output_path=args.output, save_images=True,
                             install_dependencies=args.install_dependencies, seed=args.seed, device=args.device,
                             batch_size=args.batch_size, progress=False if args.no_progress else None,
                             trust_remote_code=args.trust_remote_code, shard=args.shard, **output_options(args),
                             **kwargs)
        data = {"output_path": str(run.output_path), "num_samples": run.num_samples, "seed": run.seed,
                "manifest": str(run.manifest_path), "provenance": str(run.provenance_path)}
        _emit(args, data, f"wrote {run}")
        return EXIT_OK
    if args.command in ("grid", "plot"):
        from .validate import parse_model_args
        from .visualize import plot_fid_overview, plot_samples

        if args.command == "grid":
            check_model_arguments(g, args.model_id, parse_model_args(args.arg), args.package_path,
                                  args.install_dependencies, args.trust_remote_code)
            fig = plot_samples(args.model_id, n=args.num_samples, seed=args.seed, ncols=args.ncols, device=args.device,
                               package_path=args.package_path, save_path=args.output, pyplot=False,
                               install_dependencies=args.install_dependencies,
                               trust_remote_code=args.trust_remote_code, get_executor=g.get_model_executor,
                               **parse_model_args(args.arg))
        else:
            fig = plot_fid_overview(args.models, save_path=args.output, pyplot=False, catalog=g.config_manager)
        _emit(args, {"output": str(os.path.abspath(args.output)), "axes": len(fig.axes)}, f"wrote {args.output}")
        return EXIT_OK
    if args.command in ("contribute", "init-model"):
        return _contribute(args, g)
    raise AssertionError(args.command)  # pragma: no cover


def _generate_on_ray(args: argparse.Namespace, g: Any, kwargs: dict[str, Any]) -> Any:
    """``medhub generate --engine ray``."""
    from .errors import InvalidArgumentError

    if args.shard:
        raise InvalidArgumentError("--shard and --engine ray do not combine: Ray splits the run over its workers.")
    if not args.output:
        raise InvalidArgumentError("--engine ray needs -o: a folder every Ray worker can reach, or a URL such as "
                                   "s3://bucket/folder.")
    return g.generate_on_ray(args.model_id, args.num_samples, args.output, args.seed, num_workers=args.workers,
                             address=args.address, device=args.device, batch_size=args.batch_size,
                             install_dependencies=args.install_dependencies, trust_remote_code=args.trust_remote_code,
                             progress=False if args.no_progress else None, **output_options(args), **kwargs)


def _fid(args: argparse.Namespace, g: Any) -> int:
    from . import evaluate
    from .evaluate.commands import image_set

    options = dict(extractor=args.extractor, weights=args.weights, normalize=args.normalize,
                   batch_size=args.batch_size, device=args.device, seed=args.seed, real_cache=args.real_cache,
                   catalog=g.config_manager)
    real, synthetic = image_set(args.real), image_set(args.synthetic)
    if args.lower_bound or args.reference:
        report = evaluate.fid_report(real, synthetic, reference=args.reference, **options)
        _emit(args, report.to_dict(), str(report))
    else:
        value = evaluate.fid(real, synthetic, **options)
        _emit(args, {"fid": value, "extractor": args.extractor, "normalize": args.normalize}, f"FID {value:.3f}")
    return EXIT_OK


def _cache(args: argparse.Namespace, g: Any) -> int:
    from .execution.cache import PackageCache
    from .execution.hub import HubSource

    cache = PackageCache()
    if args.cache_command == "ls":
        rows = cache.list()
        snapshots = HubSource().list()
        text = "\n".join(f"{r['model_id']:<40} {r['sha256'][:16]}  {r['size'] or 0:>12,} B  {r['path']}"
                         for r in rows + snapshots)
        _emit(args, rows + snapshots, (text + "\n" if rows or snapshots else "") +
              f"{len(rows)} cached package(s) in {cache.root}, {len(snapshots)} Hugging Face Hub snapshot(s)")
        return EXIT_OK
    if args.cache_command == "verify":
        problems = cache.verify() + HubSource().verify()
        _emit(args, {"ok": not problems, "problems": problems}, "\n".join(problems) or "cache ok")
        return EXIT_OK if not problems else EXIT_ERROR
    if args.cache_command == "rm":
        known = g.config_manager.is_model_in_config(args.model_id)
        model_id = g.config_manager.resolve_model_id(args.model_id) if known else args.model_id
        execution = g.config_manager.config_dict[model_id]["execution"] if known else None
        removed = [str(p) for p in cache.remove(model_id, execution)]
        removed += [str(p) for p in HubSource().forget(model_id)]  # records of Hub snapshots (not HF's cache)
        _emit(args, removed, "\n".join(f"removed {p}" for p in removed) or f"nothing cached for {model_id}")
        return EXIT_OK
    from .outputs import remove_stale_runs

    removed = [str(p) for p in cache.prune(g.config_manager.config_dict)]
    for folder in [cache.root / "outputs", *args.outputs]:
        removed += [str(p) for p in remove_stale_runs(folder)]
    _emit(args, removed, "\n".join(f"removed {p}" for p in removed) or "nothing to prune")
    return EXIT_OK


def _contribute(args: argparse.Namespace, g: Any) -> int:
    """``medhub contribute`` and ``medhub init-model``."""
    from .errors import InvalidArgumentError

    if args.command == "init-model":
        from .contribute import init_model

        folder = init_model(args.name, args.model_id, args.output, taken=list(g.config_manager.model_ids))
        _emit(args, {"package": str(folder)},
              f"wrote {folder}\nnext: edit the network, weights, metadata.json and README.md, then\n"
              f"  medhub contribute {args.model_id or args.name} {folder / '__init__.py'} --dry-run")
        return EXIT_OK
    fields: dict[str, Any] = {}
    for item in args.field:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"--field takes KEY=VALUE with a dotted KEY, not {item!r}.")
        try:
            fields[key] = json.loads(value)
        except json.JSONDecodeError:
            fields[key] = value
    if args.hub:
        return _propose_hub(args, g, fields)
    if not args.init_py_path:
        raise InvalidArgumentError("medhub contribute needs the package's __init__.py (or --hub OWNER/REPO for a "
                                   "model already on the Hugging Face Hub).")
    result = g.contribute(
        args.model_id, args.init_py_path, metadata_file_path=args.metadata, model_weights_name=args.weights_name,
        model_weights_extension=args.weights_extension, generate_method_name=args.generate_method,
        dependencies=args.dependencies, overwrite_existing_metadata=args.new_version, output_path=args.output,
        creator_name=args.creator_name, creator_affiliation=args.creator_affiliation,
        model_description=args.description, install_dependencies=args.install_dependencies, dry_run=args.dry_run,
        publish=args.publish, sandbox=args.sandbox, interactive=args.interactive, metadata_fields=fields or None,
        zenodo_url=args.zenodo_url, github_url=args.github_url, github_repo=args.github_repo,
        zenodo_deposition_id=args.zenodo_deposition_id, package_link=args.package_link,
        num_samples=args.num_samples, device=args.device)
    lines = [f"archive: {result.archive_path} (sha256 {result.sha256}, {result.size} bytes)"]
    if result.deposition_id is not None:
        lines.append(f"zenodo deposition: {result.deposition_id}" + ("" if result.published else " (draft)"))
    if result.published:
        lines.append(f"zenodo record: {result.record_id}  download: {result.download_url}")
    if result.issue_url:
        lines.append(f"issue: {result.issue_url}" + ("" if result.issue_created else " (already open)"))
    lines.append(str(result))
    _emit(args, result.as_dict(), "\n".join(lines))
    return EXIT_OK


def _propose_hub(args: argparse.Namespace, g: Any, fields: dict[str, Any]) -> int:
    """``medhub contribute MODEL_ID --hub OWNER/REPO --revision REV --interface KIND``."""
    from .contribute import propose_hub_model
    from .errors import InvalidArgumentError

    if not args.revision or not args.interface:
        raise InvalidArgumentError("--hub needs --revision (a commit hash pins the model) and --interface "
                                   "(diffusers or monai-bundle).")
    metadata = None
    if args.metadata:
        from pathlib import Path

        doc = json.loads(Path(args.metadata).read_text())
        metadata = doc.get(args.model_id, doc) if isinstance(doc, dict) else None
    proposal = propose_hub_model(args.model_id, args.hub, args.revision, args.interface, metadata=metadata,
                                 metadata_fields=fields, taken=list(g.config_manager.model_ids),
                                 github_url=args.github_url, github_repo=args.github_repo, dry_run=args.dry_run,
                                 folder=args.from_dir)
    text = proposal.body if args.dry_run else (f"issue: {proposal.issue_url}"
                                               + ("" if proposal.issue_created else " (already open)"))
    _emit(args, {"model_id": proposal.model_id, "entry": proposal.entry, "issue_url": proposal.issue_url,
                 "issue_created": proposal.issue_created, "pinned": proposal.pinned}, text)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medhub`` command; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from . import settings
    from .errors import MedhubError, SettingError

    try:
        debug = bool(getattr(args, "debug", False) or settings.get("MEDHUB_DEBUG"))
    except SettingError:  # reported by check_all below
        debug = False
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="medhub: %(levelname)s: %(message)s")
    try:
        settings.check_all()  # a bad MEDHUB_* value fails before any work
        return _run(args)
    except KeyboardInterrupt:
        print("medhub: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `medhub list | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except MedhubError as exc:
        if debug:
            traceback.print_exc()
        message = " ".join(str(exc).split())
        print(f"medhub: error: {message}", file=sys.stderr)
        return exit_code(exc)
    except Exception as exc:  # an unexpected bug: still one line unless --debug
        if debug:
            traceback.print_exc()
        print(f"medhub: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)", file=sys.stderr)
        return EXIT_ERROR


def console_main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point for the ``medhub`` console script: :func:`main`, then a fast exit.

    After a successful ``generate`` every file is written, renamed into place and closed, and the
    interpreter's teardown of torch (finalising its modules and objects, about half a second) only
    delays the shell prompt: the process flushes its streams and logs and ends at once
    (``os._exit``). Other commands, failures and Ray runs (whose atexit handler stops the local
    cluster it started) exit normally.
    """
    code = main(argv)
    finish(code, list(sys.argv[1:] if argv is None else argv))


def finish(code: int, args: Sequence[str]) -> NoReturn:
    """End the process with ``code`` after the command ``args`` ran: at once (``os._exit``, streams
    and logs flushed) after a successful ``generate`` with torch loaded and no Ray, else normally."""
    if code == EXIT_OK and "generate" in list(args)[:3] and "torch" in sys.modules and "ray" not in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    console_main()
