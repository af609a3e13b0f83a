"""The ``filex`` connection: its fields and what a connection holds, in plain Python.

One home for the connection's form (read by the hook for Airflow 2 and by the provider info
for Airflow 3) and for :class:`FilexConnection`, the value the operators and the trigger
build their command lines from. Imports no Airflow code.
"""

from __future__ import annotations

import dataclasses
from typing import Any

#: The connection type, and the connection the operators use unless told otherwise.
CONN_TYPE = "filex"
DEFAULT_CONN_ID = "filex_default"

#: The connection's extras: key → (label, placeholder).
EXTRA_FIELDS = {
    "binary": ("filex binary", "filex (looked up on the worker's PATH)"),
    "conf_dir": ("Hadoop conf dir", "/etc/hadoop/conf (default: $HADOOP_CONF_DIR)"),
    "queue": ("YARN queue", "default"),
    "principal": ("Kerberos principal", "filex/_HOST@EXAMPLE.COM (not used by filex yet)"),
    "keytab": ("Keytab path", "/etc/security/keytabs/filex.keytab (not used by filex yet)"),
}

#: The standard connection fields the form hides: everything lives in the extras.
HIDDEN_FIELDS = ["host", "schema", "login", "password", "port"]


@dataclasses.dataclass(frozen=True)
class FilexConnection:
    """What a ``filex`` connection holds, with filex's defaults filled in."""

    binary: str = "filex"
    conf_dir: str | None = None
    queue: str | None = None
    principal: str | None = None
    keytab: str | None = None

    def conf_args(self) -> list[str]:
        """``--conf-dir DIR`` when the connection names one (every filex command takes it)."""
        return ["--conf-dir", self.conf_dir] if self.conf_dir else []

    @property
    def has_kerberos(self) -> bool:
        return bool(self.principal or self.keytab)


def extra_value(extras: dict[str, Any], key: str) -> str | None:
    # Airflow < 2.3 stored form fields as extra__<type>__<key>; read both spellings.
    value = extras.get(key, extras.get(f"extra__{CONN_TYPE}__{key}"))
    if value is None or str(value).strip() == "":
        return None
    return str(value).strip()


def ui_field_behaviour() -> dict[str, Any]:
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": {},
        "placeholders": {key: placeholder for key, (_, placeholder) in EXTRA_FIELDS.items()},
    }


def conn_fields() -> dict[str, Any]:
    """The extras as Airflow 3's declarative ``conn-fields`` (provider info)."""
    return {
        key: {"label": label, "schema": {"type": ["string", "null"]}}
        for key, (label, _) in EXTRA_FIELDS.items()
    }
