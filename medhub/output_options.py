"""The options of ``medhub generate`` that decide how its files are written: their format, their
marks (:mod:`medhub.outputs.marks`) and their C2PA signature. Imports nothing heavy (building the
CLI's parser stays fast)."""

from __future__ import annotations

import argparse
from typing import Any


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--format``, ``--no-mark``, ``--sign-key`` and ``--sign-cert`` to ``parser``."""
    parser.add_argument("--format", dest="output_format", choices=["png", "nifti", "npy", "dicom"],
                        help="write images, masks and volumes in this format (default: PNG for 2D, NIfTI for "
                             "volumes; dicom needs pip install 'medhub[dicom]')")
    parser.add_argument("--no-mark", action="store_true", help="write files without the medhub mark (sample "
                        "record, IPTC trainedAlgorithmicMedia); recorded in provenance.json")
    parser.add_argument("--sign-key", metavar="PEM", help="sign PNG files with C2PA content credentials (with "
                                                          "--sign-cert; default MEDHUB_SIGN_KEY; pip install "
                                                          "'medhub[c2pa]')")
    parser.add_argument("--sign-cert", metavar="PEM", help="certificate chain of --sign-key (default MEDHUB_SIGN_CERT)")


def output_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``generate`` keyword arguments of the parsed options (``output_format``, ``mark``, ``sign``).

    Example:
        >>> p = argparse.ArgumentParser()
        >>> add_output_options(p)
        >>> output_options(p.parse_args(["--format", "dicom", "--no-mark"]))
        {'output_format': 'dicom', 'mark': False, 'sign': None}
    """
    sign = (args.sign_key, args.sign_cert) if args.sign_key or args.sign_cert else None
    return {"output_format": args.output_format, "mark": not args.no_mark, "sign": sign}
