"""The ``medhub evaluate`` and ``medhub report`` commands: their arguments and what they run.

``medhub.cli`` registers them with :func:`add_parsers` and hands their parsed arguments to
:func:`run`; nothing heavy is imported until a command runs.

Example:
    >>> import argparse
    >>> sub = argparse.ArgumentParser().add_subparsers(dest="command")
    >>> add_parsers(sub, argparse.ArgumentParser(add_help=False))
    >>> sorted(COMMANDS)
    ['evaluate', 'report']
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

COMMANDS = ("evaluate", "report")


def image_set(text: str) -> Any:
    """A command-line image set: a folder, or ``model:ID:N`` for N samples of model ID.

    >>> image_set("model:101:500"), image_set("real_pngs/")
    (('101', 500), 'real_pngs/')
    """
    if not text.startswith("model:"):
        return text
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"Write model sets as model:ID:N, e.g. model:101:500, not {text!r}.")
    return (parts[1], int(parts[2]))


def positive_int(text: str) -> int:
    """An argparse type: a positive integer (``--batch-size 0`` is refused with one line, exit code 2).

    >>> positive_int("8")
    8
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"give a positive integer, not {text!r}")
    return value


def add_extractor_options(p: argparse.ArgumentParser, seed_help: str) -> None:
    """The options of ``medhub fid``, ``evaluate`` and ``report`` that choose the feature extractor, its
    device and batch size, the seed and the real set's feature cache."""
    p.add_argument("--extractor", default="inception", choices=["inception", "radimagenet"])
    p.add_argument("--weights", help="extractor TorchScript file (required for radimagenet)")
    p.add_argument("--normalize", action="store_true", help="per-image min-max normalisation")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per pass of the extractor (default 32)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--real-cache", help=".npz file caching the real set's features (shared by fid, evaluate, report)")


def _feature_options(p: argparse.ArgumentParser) -> None:
    add_extractor_options(p, "seed of model samples, KID subsets and the bootstrap")
    p.add_argument("--k", type=int, default=5, help="nearest neighbours of precision/recall/density/coverage")
    p.add_argument("--kid-subsets", type=int, default=100)
    p.add_argument("--kid-subset-size", type=int, help="default: min(1000, n_real, n_synthetic)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates of the intervals (0: none)")
    p.add_argument("--confidence", type=float, default=0.95)


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``evaluate`` and ``report`` to the ``medhub`` subcommands."""
    p = sub.add_parser("evaluate", parents=[common], help="FID, KID, precision/recall/density/coverage with intervals")
    p.add_argument("real", help="folder of real images, or model:ID:N")
    p.add_argument("synthetic", help="folder of synthetic images, or model:ID:N (N samples of model ID)")
    p.add_argument("--metrics", default="fid,kid,prdc", help="comma-separated: fid, kid, prdc (default: all)")
    p.add_argument("--reference", help="a second real set (folder, e.g. training images when REAL is held out): "
                                       "adds the real-real baseline of every figure")
    p.add_argument("--train", help="training images (folder): adds the memorisation check")
    _feature_options(p)

    p = sub.add_parser("report", parents=[common], help="one-page HTML + JSON evaluation report of a model")
    p.add_argument("model_id")
    p.add_argument("--real", required=True, help="folder of real (held-out) images of the model's source")
    p.add_argument("--train", help="folder of the training images: adds the real-real baseline and the "
                                   "memorisation check")
    p.add_argument("-n", "--num-samples", type=int, help="samples to generate (default: as many as real images)")
    p.add_argument("-o", "--output", default="report.html",
                   help="HTML file to write (.html added if missing; JSON beside it), or an existing folder "
                        "(MODEL_ID.html in it)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="model input (repeatable)")
    _feature_options(p)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(extractor=args.extractor, weights=args.weights, normalize=args.normalize, batch_size=args.batch_size,
                device=args.device, seed=args.seed, real_cache=args.real_cache, k=args.k, kid_subsets=args.kid_subsets,
                kid_subset_size=args.kid_subset_size, bootstrap=args.bootstrap, confidence=args.confidence,
                progress=False)


def run(args: argparse.Namespace, generators: Any, emit: Callable[[argparse.Namespace, Any, str], None]) -> int:
    """Run ``medhub evaluate`` or ``medhub report`` with the command's ``Generators`` (its catalog,
    ``--config``, resolves every model id); ``emit(args, data, text)`` prints the result."""
    if args.command == "evaluate":
        from .suite import metrics_report

        real = image_set(args.real)
        report = metrics_report(real, image_set(args.synthetic), metrics=args.metrics, reference=args.reference,
                                catalog=generators.config_manager, **_options(args))
        data, text = report.to_dict(), str(report)
        if args.train:
            from .memorization import memorization_report

            mem = memorization_report(image_set(args.synthetic), args.train, held_out=real,
                                      catalog=generators.config_manager,
                                      **{k: v for k, v in _options(args).items() if k in _FEATURE_KEYS})
            data["memorization"] = mem.to_dict()
            text += "\n" + mem.summary_text()
        emit(args, data, text)
        return 0
    from ..execution.inputs import check_inputs
    from ..validate import parse_model_args
    from .report import model_report

    model_args = parse_model_args(args.arg)
    check_inputs(generators.get_model_executor(args.model_id), model_args, "--arg")  # named as typed
    result = model_report(args.model_id, args.real, train=args.train, num_samples=args.num_samples, output=args.output,
                          model_args=model_args, generators=generators, **_options(args))
    emit(args, {"html": str(result.html_path), "json": str(result.json_path)},
         f"wrote {result.html_path} and {Path(result.json_path).name}\n{result.summary}")
    return 0


_FEATURE_KEYS = ("extractor", "weights", "normalize", "batch_size", "device", "seed", "progress")
