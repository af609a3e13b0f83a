"""What Airflow's providers manager reads through the ``apache_airflow_provider`` entry point
(pyproject.toml): the ``filex`` connection type, its hook, form fields and extra link.

Airflow 2 reads ``hook-class-names`` / ``connection-types`` and asks the hook for its form;
Airflow 3 reads the form from ``conn-fields`` and ``ui-field-behaviour`` here, without
importing the hook. Importing this module imports no Airflow code.
"""

from __future__ import annotations

from typing import Any

from filex_airflow import __version__

HOOK = "filex_airflow.hooks.FilexHook"
LINK = "filex_airflow.links.FilexTrackingLink"


def get_provider_info() -> dict[str, Any]:
    from filex_airflow.connection import CONN_TYPE, conn_fields, ui_field_behaviour

    behaviour = ui_field_behaviour()
    return {
        "package-name": "filex-airflow",
        "name": "filex",
        "description": "Runs filex fusion jobs as YARN applications (filex submit) or "
        "embedded (filex run).",
        "versions": [__version__],
        "hook-class-names": [HOOK],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": HOOK,
                "hook-name": "filex",
                "conn-fields": conn_fields(),
                # The provider info spells the hook's "hidden_fields" in kebab case.
                "ui-field-behaviour": {
                    "hidden-fields": behaviour["hidden_fields"],
                    "relabeling": behaviour["relabeling"],
                    "placeholders": behaviour["placeholders"],
                },
            }
        ],
        "extra-links": [LINK],
        "triggers": [
            {"integration-name": "filex", "python-modules": ["filex_airflow.triggers"]}
        ],
    }
