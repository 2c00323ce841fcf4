"""Content credentials (C2PA) for PNG outputs: an opt-in signed manifest beside the medhub mark.

With a signing key and its certificate chain (``generate(..., sign=(KEY, CERT))``,
``medhub generate --sign-key KEY --sign-cert CERT``, or ``MEDHUB_SIGN_KEY`` / ``MEDHUB_SIGN_CERT``),
every PNG a run writes also carries a C2PA manifest (c2pa-python, ``pip install 'medhub[c2pa]'``):
a ``c2pa.actions`` assertion (``c2pa.created`` with the IPTC digital source type
``trainedAlgorithmicMedia``) and the sample record as the assertion ``org.medhub.sample``. The
signature is made offline (no timestamp authority). ``medhub inspect`` shows the manifest and
whether it validates (against ``MEDHUB_C2PA_TRUST_ANCHORS`` when set).

Signatures are randomised, so signed files are not byte-for-byte reproducible; their pixels are,
which is what ``medhub verify`` compares.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import DependencyError, InvalidArgumentError
from .marks import SOURCE_TYPE

ASSERTION = "org.medhub.sample"
_NO_THUMBNAIL = {"builder": {"thumbnail": {"enabled": False}}}


@dataclass(frozen=True)
class Signing:
    """Where a run's signing key (PEM, PKCS#8) and its certificate chain (PEM, signer first) are."""

    key: str
    cert: str

    def check(self) -> None:
        """Fail now, with one line, if the key, the certificate or c2pa-python cannot be used."""
        _signer_info(self.key, self.cert)


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError:
        raise DependencyError("Signing outputs with C2PA content credentials needs c2pa-python: "
                              "pip install 'medhub[c2pa]'.", ["c2pa-python"]) from None
    return c2pa


@lru_cache(maxsize=8)
def _signer_info(key: str, cert: str) -> tuple[bytes, bytes]:
    """The PEM bytes of a signing key and certificate chain, checked by making a signer of them."""
    c2pa = _c2pa()
    try:
        pem_key, pem_cert = Path(key).read_bytes(), Path(cert).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError(f"Cannot read the signing key or certificate: {exc}.") from None
    try:
        c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, pem_cert, pem_key, None)).close()
    except Exception as exc:  # noqa: BLE001 - c2pa's errors name what is wrong with the key
        raise InvalidArgumentError(f"The signing key {key} and certificate {cert} cannot sign (an ES256 key and its "
                                   f"PEM certificate chain are needed): {exc}") from None
    return pem_key, pem_cert


def manifest(record: Mapping[str, Any]) -> dict[str, Any]:
    """The C2PA manifest definition of one file: its creation by a trained model, and its record."""
    return {"claim_generator_info": [{"name": "medhub", "version": str(record.get("medhub_version"))}],
            "title": f"{record.get('index', 0):06d}_{record.get('output', 'image')}.png",
            "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE}]}},
                {"label": ASSERTION, "data": dict(record)}]}


def sign_png(data: bytes, record: Mapping[str, Any], signing: Signing) -> bytes:
    """``data`` (a PNG file) with a signed C2PA manifest for ``record``."""
    c2pa = _c2pa()
    key, cert = _signer_info(signing.key, signing.cert)
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, cert, key, None))
    context = c2pa.Context(c2pa.Settings.from_dict(_NO_THUMBNAIL))
    out = io.BytesIO()
    c2pa.Builder(json.dumps(manifest(record)), context=context).sign(signer, "image/png", io.BytesIO(data), out)
    return out.getvalue()


def read_credentials(data: bytes, trust_anchors: str | None = None) -> dict[str, Any] | None:
    """The C2PA manifest of a PNG file in brief (``validation_state``: Invalid, Valid or Trusted, the
    status codes, the digital source type and whether it holds a medhub record), or None when the
    file has none or c2pa-python is not installed."""
    try:
        c2pa = _c2pa()
    except DependencyError:
        return None
    settings: dict[str, Any] = {}
    if trust_anchors:
        settings = {"trust": {"trust_anchors": Path(trust_anchors).read_text()}, "verify": {"verify_trust": True}}
    try:
        reader = c2pa.Reader("image/png", io.BytesIO(data), context=c2pa.Context(c2pa.Settings.from_dict(settings)))
        report = json.loads(reader.json())
    except Exception:  # noqa: BLE001 - no manifest (c2pa raises for that too): nothing to show
        return None
    active = report.get("manifests", {}).get(report.get("active_manifest"), {})
    labels = {a.get("label", "").split(".v")[0]: a.get("data", {}) for a in active.get("assertions", [])}
    sources = [a.get("digitalSourceType") for a in labels.get("c2pa.actions", {}).get("actions", [])]
    return {"validation_state": report.get("validation_state"),
            "status": [s.get("code") for s in report.get("validation_status", []) or []],
            "digital_source_type": next((s for s in sources if s), None), "record": ASSERTION in labels}
