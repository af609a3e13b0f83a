"""The manifest of a filex job as an Airflow outlet (Dataset in Airflow 2, Asset in 3).

Outlets are static: Airflow needs them when it parses the DAG, before any window is known,
so the URI names the job, not one window: ``<output root>/_manifests/<job name>``, the
directory where filex writes one manifest per window. A DAG scheduled on it runs after every
window the job publishes; the event's ``extra`` names the window and its manifest
(``manifest``, ``application_id``, ``window_start``, ``window_end``), which the operators set
when the run succeeded.
"""

from __future__ import annotations

from filex_airflow.compat import Outlet

#: The directory under the output root where filex writes its manifests (src/manifest.rs).
MANIFESTS_DIR = "_manifests"


def manifest_uri(output_root: str, job_name: str) -> str:
    """``hdfs://nn:8020/fused/acme``, ``acme-hourly`` → ``…/fused/acme/_manifests/acme-hourly``."""
    return f"{output_root.rstrip('/')}/{MANIFESTS_DIR}/{job_name}"


def filex_manifest_outlet(output_root: str, job_name: str) -> Outlet:
    """The Dataset (Airflow 2) / Asset (Airflow 3) of a job's manifests, for ``outlets=[…]``
    of a filex operator and ``schedule=[…]`` of the DAGs that read its output.

    :param output_root: the job's ``[output] root``, as written in the job file.
    :param job_name: the job's ``name``.
    """
    return Outlet(manifest_uri(output_root, job_name))
