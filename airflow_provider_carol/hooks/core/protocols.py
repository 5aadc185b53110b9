"""The seams between our own modules, as Protocols: what each piece needs from a hook, and no more.

The staging sender, the cross-send batch and the log shipper are written against these, so they can be
read (and type-checked) without knowing ``CarolHook``'s other methods, and tested with any client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from airflow_provider_carol.hooks.core.config import CarolConnectionConfig
    from airflow_provider_carol.hooks.staging.batches import SendSummary


class LoggerLike(Protocol):
    """The part of a logger we call (stdlib ``logging.Logger`` and structlog's bound loggers both fit)."""

    def debug(self, msg: str, /, *args: Any) -> object: ...
    def info(self, msg: str, /, *args: Any) -> object: ...
    def warning(self, msg: str, /, *args: Any) -> object: ...


class IntakeClient(Protocol):
    """What :class:`~airflow_provider_carol.hooks.staging.sender.IntakeSender` needs: POST a chunk."""

    @property
    def log(self) -> LoggerLike: ...

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None = ...,
        data: bytes | None = ...,
        headers: Mapping[str, str] | None = ...,
        idempotent: bool | None = ...,
        retry_statuses: frozenset[int] = ...,
    ) -> object: ...


class StagingClient(Protocol):
    """What :class:`~airflow_provider_carol.hooks.staging.batches.StagingBatch` needs: sends and a summary."""

    @property
    def log(self) -> LoggerLike: ...

    def send_to_staging(self, staging_name: str, data: Any = ..., **options: object) -> SendSummary: ...

    def send_batch_summary(
        self, batch_id: str, records: int, requests: int, *, started_at: str, ended_at: str | None = ...
    ) -> object: ...


class LogClient(Protocol):
    """What the log shipper needs: its connection resolved up front, one JSON POST, closing."""

    @property
    def config(self) -> CarolConnectionConfig: ...

    def call_api(self, path: str, method: str | None = ..., *, json: object = ...) -> object: ...

    def close(self) -> None: ...
