"""Model ids of contributed models: their format, and which catalog numbers are still free."""

from __future__ import annotations

import re
from typing import Any

from ..errors import ModelIdError

#: A model id: five digits, an underscore and a name (``00150_MY_GAN``).
MODEL_ID_PATTERN = re.compile(r"^[0-9]{5}_[A-Za-z0-9][A-Za-z0-9_.-]*$")


def next_free_number(model_ids: list[str]) -> str:
    """The five-digit number after the highest one in use.

    Example:
        >>> next_free_number(["00001_A", "00101_B"])
        '00102'
    """
    numbers = [int(m[:5]) for m in model_ids if m[:5].isdigit()]
    return f"{(max(numbers, default=0) + 1):05d}"


def validate_model_id(model_id: Any, taken: list[str], allow_existing: bool = False) -> str:
    """The id, if it has the catalog's format and neither it nor its number is taken.

    ``allow_existing`` accepts the exact id of a catalog model (a new version of it).

    Example:
        >>> validate_model_id("00150_MY_GAN", ["00101_DCGAN_BRAIN_MRI_T1"])
        '00150_MY_GAN'
        >>> validate_model_id("00101_OTHER", ["00101_DCGAN_BRAIN_MRI_T1"])
        Traceback (most recent call last):
        ...
        medhub.errors.ModelIdError: The number 00101 of 00101_OTHER is already taken in the catalog by 00101_DCGAN_BRAIN_MRI_T1. Choose a free number, e.g. 00102_OTHER.
    """
    if not isinstance(model_id, str) or not MODEL_ID_PATTERN.match(model_id):
        raise ModelIdError(
            f"{model_id!r} is not a model id: five digits, an underscore and a name of letters, digits, '_', '.', '-' "
            "(e.g. 00150_MY_GAN).", step="model-id")
    if model_id in taken and allow_existing:
        return model_id
    clash = [m for m in taken if m[:5] == model_id[:5]]
    if clash:
        same = model_id in clash
        raise ModelIdError(
            f"{'The id' if same else 'The number ' + model_id[:5] + ' of'} {model_id} is already taken in the catalog "
            f"by {', '.join(clash)}. Choose a free number, e.g. {next_free_number(taken)}_{model_id[6:]}"
            + ("; to publish a new version of that model pass overwrite_existing_metadata=True." if same else "."),
            step="model-id")
    return model_id
