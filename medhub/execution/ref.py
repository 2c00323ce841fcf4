"""From a catalog entry to a model's executor: the one factory every part of medhub uses.

A :class:`ModelRef` is what a process needs to build a model's
:class:`~medhub.execution.ModelExecutor`: the catalog entry itself (not the catalog file, which
may not exist on a Ray node or in a DataLoader worker), small, plain and picklable.

Example:
    >>> from medhub.config import ConfigManager
    >>> ref = ModelRef.from_catalog(ConfigManager(), 101)
    >>> ref.model_id, ref.interface
    ('00101_DCGAN_BRAIN_MRI_T1', 'medhub/1')
    >>> ref.build()
    ModelExecutor(model_id='00101_DCGAN_BRAIN_MRI_T1', interface='medhub/1')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .executor import ModelExecutor
from .spec import ModelSpec

if TYPE_CHECKING:  # pragma: no cover
    from ..config import ConfigManager


@dataclass(frozen=True)
class ModelRef:
    """A model's catalog entry and where its package comes from.

    ``catalog`` (the catalog file, ``ConfigManager.source``) is kept for information only.
    """

    model_id: str
    execution: dict[str, Any]
    description: dict[str, Any] = field(default_factory=dict)
    catalog_version: str | None = None
    base_dir: str | None = None
    catalog: str | None = None
    package_path: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_catalog(cls, config_manager: ConfigManager, model_id: str | int,
                     package_path: str | os.PathLike[str] | None = None) -> ModelRef:
        """The reference of ``model_id`` (any form the catalog resolves: ``101``, ``"00101"``...)."""
        full = config_manager.resolve_model_id(model_id)
        entry = config_manager.config_dict[full]
        return cls(full, entry["execution"], entry.get("description") or {}, config_manager.catalog_version,
                   str(config_manager.base_dir), str(config_manager.source),
                   os.fspath(package_path) if package_path is not None else None, entry.get("selection") or {})

    @classmethod
    def of(cls, executor: ModelExecutor) -> ModelRef:
        """The reference an executor was built from (to build the same executor in another process)."""
        return cls(executor.model_id, executor.execution_config, executor.description, executor.catalog_version,
                   None if executor.base_dir is None else str(executor.base_dir), None,
                   None if executor.package_path is None
                   else os.path.abspath(os.path.expanduser(os.fspath(executor.package_path))), executor.selection)

    def build(self) -> ModelExecutor:
        """A new executor of this model (nothing is fetched or imported until it is first used)."""
        return ModelExecutor(self.model_id, self.execution, base_dir=self.base_dir, description=self.description,
                             catalog_version=self.catalog_version, package_path=self.package_path,
                             selection=self.selection)

    @property
    def spec(self) -> ModelSpec:
        """The typed spec of the entry's ``execution`` part."""
        return ModelSpec.parse(self.model_id, self.execution)

    @property
    def interface(self) -> str:
        return self.spec.interface

    @property
    def is_native(self) -> bool:
        """Whether sample i depends only on (seed, i) (the package kind's ``native``)."""
        return self.spec.kind.native

def executor_for(config_manager: ConfigManager, model_id: str | int,
                 package_path: str | os.PathLike[str] | None = None) -> ModelExecutor:
    """A new executor of ``model_id`` from ``config_manager``'s catalog."""
    return ModelRef.from_catalog(config_manager, model_id, package_path).build()
