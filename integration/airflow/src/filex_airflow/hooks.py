"""``FilexHook``: the ``filex`` connection type, which says how to reach filex and the cluster.

A connection of type ``filex`` (default id ``filex_default``) keeps, in its extras, what every
filex task of a deployment shares: ``binary`` (the filex executable), ``conf_dir`` (the Hadoop
configuration directory, passed as ``--conf-dir``), ``queue`` (the default YARN queue) and
``principal`` / ``keytab`` (a Kerberos identity). filex does not support Kerberos yet and has
no flag for either, so the two are carried by the connection but not passed to filex: a task
whose connection sets them logs that they are unused. The hook runs nothing itself; the
operators and the trigger build their command lines from :meth:`FilexHook.get_conn`.
"""

from __future__ import annotations

from typing import Any

from filex_airflow.compat import AirflowNotFoundException, BaseHook
from filex_airflow.connection import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    EXTRA_FIELDS,
    FilexConnection,
    extra_value,
    ui_field_behaviour,
)

class FilexHook(BaseHook):
    """Reads a ``filex`` connection.

    :param filex_conn_id: the connection; when it is ``filex_default`` and no such connection
        exists, filex's defaults are used (``filex`` on the PATH, ``$HADOOP_CONF_DIR``), so DAGs
        work without one. Any other id must exist.
    """

    conn_name_attr = "filex_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "filex"

    def __init__(self, filex_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filex_conn_id = filex_conn_id
        self._conn: FilexConnection | None = None

    def get_conn(self) -> FilexConnection:
        if self._conn is None:
            self._conn = self._load()
        return self._conn

    def _load(self) -> FilexConnection:
        try:
            conn = self.get_connection(self.filex_conn_id)
        except AirflowNotFoundException:
            if self.filex_conn_id != DEFAULT_CONN_ID:
                raise
            self.log.info("No connection %s: filex's defaults apply", DEFAULT_CONN_ID)
            return FilexConnection()
        extras = conn.extra_dejson or {}
        found = {key: extra_value(extras, key) for key in EXTRA_FIELDS}
        result = FilexConnection(
            binary=found["binary"] or "filex",
            conf_dir=found["conf_dir"],
            queue=found["queue"],
            principal=found["principal"],
            keytab=found["keytab"],
        )
        if result.has_kerberos:
            self.log.warning(
                "Connection %s sets a Kerberos principal/keytab: filex does not support "
                "Kerberos yet, so they are not passed to it",
                self.filex_conn_id,
            )
        return result

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Airflow 2's connection form (Airflow 3 reads the same from the provider info)."""
        return ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Airflow 2's connection form: one text field per extra."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import StringField

        return {
            key: StringField(lazy_gettext(label), widget=BS3TextFieldWidget())
            for key, (label, _) in EXTRA_FIELDS.items()
        }
