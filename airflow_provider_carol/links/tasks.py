"""The "Carol task" extra link: the Carol UI page of the long task an operator or sensor follows.

The API server only reads the link's XCom (``_link_CarolTaskLink``), and the worker writes it at task
end. Our operators push the URL under that key as soon as the Carol task id is known, so the button
works while the task is running or deferred. No hook is imported: rendering a link never calls Carol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey


class CarolTaskLink(BaseOperatorLink):
    """Button "Carol task": ``{scheme}://{api host}/{tenant}/carol-ui/tasks/{task_id}`` (docs/links.md)."""

    name = "Carol task"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The URL the task pushed under :attr:`xcom_key`, or ``""`` before the Carol task exists."""
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


def persist_task_link(context: Any, url: str) -> None:
    """Push the URL under the link's XCom key now, so the link shows while the task waits."""
    context["ti"].xcom_push(key=CarolTaskLink().xcom_key, value=url)
