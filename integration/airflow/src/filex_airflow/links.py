"""``FilexTrackingLink``: the task's "YARN application" button, to the tracking URL.

The operators push the URL filex prints (``tracking URL: …``) to XCom under ``tracking_url``;
the link reads it back. Airflow 3 renders links from XCom by ``xcom_key`` alone, Airflow 2
calls ``get_link``; both read the same key.
"""

from __future__ import annotations

from typing import Any

from filex_airflow.compat import BaseOperatorLink, xcom_value

#: The XCom key the operators push the tracking URL under.
TRACKING_URL = "tracking_url"


class FilexTrackingLink(BaseOperatorLink):
    """The YARN tracking URL of the task's application (empty until filex printed one)."""

    name = "YARN application"

    @property
    def xcom_key(self) -> str:
        return TRACKING_URL

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return xcom_value(ti_key, TRACKING_URL) or ""
