"""The "Carol task" extra link: the Carol UI page of the long task an operator or sensor follows.

The API server only reads the link's XCom (``_link_CarolTaskLink``), and the worker writes it at task
end. Our operators push the URL under that key as soon as the Carol task id is known, so the button
works while the task is running or deferred. No hook is imported: rendering a link never calls Carol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperatorLink, XCom

from airflow_provider_carol.compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, TaskInstanceKey


class CarolTaskLink(BaseOperatorLink):
    """Button "Carol task": ``{scheme}://{api host}/{tenant}/carol-ui/tasks/{task_id}`` (docs/links.md)."""

    name = "Carol task"

    if not AIRFLOW_V_3_0_PLUS:  # Airflow 3's BaseOperatorLink names the key; 2.11's has no xcom_key

        @property
        def xcom_key(self) -> str:
            """The XCom key of the URL, named as Airflow 3 names it (``_link_CarolTaskLink``)."""
            return f"_link_{type(self).__name__}"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task pushed under :attr:`xcom_key`, or ``""`` before the Carol task exists."""
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


def persist_task_link(context: Any, url: str) -> None:
    """Push the URL under the link's XCom key now, so the link shows while the task waits."""
    context["ti"].xcom_push(key=CarolTaskLink().xcom_key, value=url)
