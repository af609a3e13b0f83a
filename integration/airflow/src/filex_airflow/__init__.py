"""Airflow provider for filex: ``FilexSubmitOperator`` (``filex submit``, optionally deferrable),
``FilexRunOperator`` (``filex run``), ``FilexHook`` and the ``filex`` connection type, the
"YARN application" link and the manifest as an outlet.

The names are imported lazily, so that Airflow's providers manager can read
:func:`filex_airflow.provider.get_provider_info` without importing the operators.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "APPLICATION_ID": "filex_airflow.operators",
    "EXIT_CODES": "filex_airflow.operators",
    "FilexSubmitOperator": "filex_airflow.operators",
    "FilexRunOperator": "filex_airflow.operators",
    "FilexHook": "filex_airflow.hooks",
    "FilexApplicationTrigger": "filex_airflow.triggers",
    "FilexTrackingLink": "filex_airflow.links",
    "filex_manifest_outlet": "filex_airflow.outlets",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'filex_airflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
