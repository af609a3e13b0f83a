"""Airflow integration of filex: :class:`FilexSubmitOperator` runs ``filex submit``."""

from filex_airflow.operators import APPLICATION_ID, EXIT_CODES, FilexSubmitOperator

__all__ = ["APPLICATION_ID", "EXIT_CODES", "FilexSubmitOperator"]
__version__ = "0.1.0"
