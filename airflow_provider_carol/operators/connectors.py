"""``CarolCreateConnectorOperator``: get-or-create a Carol connector by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import Context

from airflow_provider_carol.operators.base import CarolBaseOperator


class CarolCreateConnectorOperator(CarolBaseOperator):
    """Return the id of the connector called ``name``, creating it when it does not exist.

    Idempotent: a second run (or a retry) returns the same id. It never deletes a connector or its
    data (pycarol's ``overwrite=True`` force-deleted both).

    :param name: the connector's name (``mdmName``), unique in the tenant (templated).
    :param label: display label (``mdmLabel.en-US``), default the name (templated).
    :param group_name: connector group (``mdmGroupName``), default ``Others`` (templated).
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("name", "connector_label", "group_name")

    def __init__(
        self,
        *,
        name: str,
        label: str | None = None,
        group_name: str = "Others",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.connector_label = label  # ``label`` is a BaseOperator property
        self.group_name = group_name

    def execute(self, context: Context) -> str:
        """Get or create the connector; its id goes to XCom."""
        return self.hook.get_or_create_connector(
            self.name, label=self.connector_label, group_name=self.group_name
        )
