"""``CarolCreateConnectorOperator``: get-or-create a Carol connector by name."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_provider_carol.hooks.carol import CarolHook


class CarolCreateConnectorOperator(BaseOperator):
    """Return the id of the connector called ``name``, creating it when it does not exist.

    Idempotent: a second run (or a retry) returns the same id. It never deletes a connector or its
    data (pycarol's ``overwrite=True`` force-deleted both).

    :param name: the connector's name (``mdmName``), unique in the tenant (templated).
    :param label: display label (``mdmLabel.en-US``), default the name (templated).
    :param group_name: connector group (``mdmGroupName``), default ``Others`` (templated).
    :param carol_conn_id: the ``carol`` connection.
    """

    template_fields: Sequence[str] = ("name", "connector_label", "group_name")
    ui_color = "#2e8fd6"

    def __init__(
        self,
        *,
        name: str,
        label: str | None = None,
        group_name: str = "Others",
        carol_conn_id: str = CarolHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.name = name
        self.connector_label = label  # ``label`` is a BaseOperator property
        self.group_name = group_name
        self.carol_conn_id = carol_conn_id

    @cached_property
    def hook(self) -> CarolHook:
        """The hook, built on first use so DAG parsing never touches the connection."""
        return CarolHook(self.carol_conn_id)

    def execute(self, context: Context) -> str:
        """Get or create the connector; its id goes to XCom."""
        return self.hook.get_or_create_connector(
            self.name, label=self.connector_label, group_name=self.group_name
        )
