"""BigQuery through Carol's temporary service-account key: the BigQuery methods of ``CarolHook``.

Carol hands out a temporary Google service-account key (``POST /sql/v1/api/v1/create_temporary_key``),
kept in memory only (:mod:`.keys`). The Google clients are imported lazily (they are heavy, and an
optional extra: ``pip install 'airflow-provider-carol[bigquery]'``), so importing the hook stays cheap at
DAG parse. Connection extras ``bigquery_endpoint`` (REST, e.g. ``http://127.0.0.1:9050``) and
``bigquery_storage_endpoint`` (gRPC ``host:port``) point both clients at a local emulator; a loopback
storage endpoint is reached in plaintext through ``grpc.local_channel_credentials()``, which keeps the
real service-account credentials path.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from airflow_provider_carol.exceptions import CarolApiError, CarolBigQueryError, CarolConfigError
from airflow_provider_carol.hooks.bigquery.errors import bigquery_error, is_loopback, key_failure
from airflow_provider_carol.hooks.bigquery.keys import (
    TEMPORARY_KEYS,
    KeyId,
    TemporaryKey,
    mask_private_key,
    parse_key_expiry,
)
from airflow_provider_carol.hooks.bigquery.labels import LABEL_SOURCE, airflow_labels, build_labels
from airflow_provider_carol.hooks.bigquery.read_streams import read_streams
from airflow_provider_carol.hooks.core import endpoints
from airflow_provider_carol.hooks.core.retry import backoff_seconds
from airflow_provider_carol.hooks.core.sync_driver import CarolHookBase
from airflow_provider_carol.hooks.core.transport import Call, Flow
from airflow_provider_carol.hooks.core.types import Json
from airflow_provider_carol.optional import require

if TYPE_CHECKING:
    import pyarrow as pa
    from google.cloud import bigquery
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient
    from google.oauth2.service_account import Credentials

BIGQUERY_SCOPES = ("https://www.googleapis.com/auth/bigquery",)
#: Longest single wait between tries of a call whose key Google failed (pycarol waits up to 120 s).
MAX_KEY_BACKOFF = 60.0
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)
T = TypeVar("T")


def mint_temporary_key(body: Mapping[str, object]) -> Flow[Json]:
    """One ``create_temporary_key`` POST; never resent once it may have reached Carol (a second key)."""
    return (yield Call.to(endpoints.BIGQUERY_TEMPORARY_KEY, json=dict(body), idempotent=False))


class BigQueryMethods(CarolHookBase):
    """BigQuery methods of ``CarolHook``."""

    #: Lifetime asked for each temporary key, in hours (Carol allows up to 24).
    bigquery_key_hours: float = 24
    #: Tries of a BigQuery call whose key Google fails (pycarol's 8), and the back-off base in seconds.
    bigquery_key_attempts: int = 8
    bigquery_key_backoff: float = 1.0

    # -- where ----------------------------------------------------------------------------------------
    @property
    def bigquery_project(self) -> str:
        """The tenant's BigQuery project, ``carol-<tenantId[:20]>``."""
        return f"carol-{self._bigquery_tenant_id()[:20]}"

    @property
    def bigquery_dataset(self) -> str:
        """The tenant's dataset, named after the tenant id."""
        return self._bigquery_tenant_id()

    def _bigquery_tenant_id(self) -> str:
        tenant_id = self.current.tenant_id
        if not tenant_id:
            raise CarolConfigError(
                f"Carol connection {self.carol_conn_id!r} is at organization level; BigQuery needs a "
                "tenant (set extra 'tenant' and org_level false)."
            )
        return tenant_id

    @property
    def bigquery_endpoints(self) -> tuple[str | None, str | None]:
        """``(bigquery_endpoint, bigquery_storage_endpoint)`` from the connection (validated there)."""
        return self.config.bigquery_endpoint, self.config.bigquery_storage_endpoint

    # -- the key --------------------------------------------------------------------------------------
    def _key_cache_key(self) -> KeyId:
        return (self.carol_conn_id, self.config.base_url, self._bigquery_tenant_id())

    def _temporary_key(self, *, stale: TemporaryKey | None = None) -> TemporaryKey:
        """The cached key, minting a new one when absent, near expiry, or equal to ``stale`` (rejected)."""
        return TEMPORARY_KEYS.valid(self._key_cache_key(), self._mint_key, stale=stale)

    def _mint_key(self) -> TemporaryKey:
        """One ``create_temporary_key`` POST; never retried blindly (a resend would mint a second key)."""
        context = self.current
        hours = self.bigquery_key_hours
        body = {
            "expirationTime": int(hours) if float(hours).is_integer() else hours,
            "mdmOrgId": context.org_id,
            "mdmTenantId": self._bigquery_tenant_id(),
        }
        minted_at = dt.datetime.now(dt.timezone.utc)
        info = self.run(mint_temporary_key(body))
        if not isinstance(info, dict) or not info.get("private_key") or not info.get("client_email"):
            raise CarolApiError(
                "Carol's create_temporary_key answer is not a service-account key "
                "(no private_key/client_email).",
                endpoint=str(endpoints.BIGQUERY_TEMPORARY_KEY),
            )
        mask_private_key(info)
        expires_at = parse_key_expiry(info.get("expiration_time"), minted_at, hours)
        self.log.info("Carol BigQuery temporary key obtained; it expires at %s", expires_at.isoformat())
        return TemporaryKey(info=info, expires_at=expires_at, minted_at=minted_at)

    def get_bigquery_credentials(self) -> Credentials:
        """Google service-account credentials from Carol's temporary key (cached, renewed before expiry)."""
        require("bigquery")
        key = self._temporary_key()
        if key.credentials is None:
            from google.oauth2 import service_account

            try:
                key.credentials = service_account.Credentials.from_service_account_info(
                    key.info, scopes=list(BIGQUERY_SCOPES)
                )
            except ValueError as exc:  # the message names the missing field, never the key material
                raise CarolApiError(
                    f"Carol's temporary key is not a usable service account: {exc}",
                    endpoint=str(endpoints.BIGQUERY_TEMPORARY_KEY),
                ) from None
        return cast("Credentials", key.credentials)

    def _client_project(self) -> str:
        """Jobs run in the key's own project (as pycarol does), else the tenant's project."""
        return str(self._temporary_key().info.get("project_id") or self.bigquery_project)

    # -- clients --------------------------------------------------------------------------------------
    def bigquery_labels(self, labels: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Job labels: tenant, organization, source and the Airflow dag/task/run, plus ``labels``."""
        context = self.current
        base = {"source": LABEL_SOURCE, "tenant": context.tenant_name, "organization": context.org_name}
        return build_labels(base, airflow_labels(), labels)

    def get_bigquery_client(
        self, *, dataset: str | None = None, labels: Mapping[str, Any] | None = None
    ) -> bigquery.Client:
        """A BigQuery REST client on the temporary key; its queries default to the tenant's dataset."""
        require("bigquery")
        from google.cloud import bigquery

        rest_endpoint, _ = self.bigquery_endpoints
        job_config = bigquery.QueryJobConfig(
            default_dataset=self.dataset_reference(dataset), labels=self.bigquery_labels(labels)
        )
        return bigquery.Client(
            project=self._client_project(),
            credentials=self.get_bigquery_credentials(),
            client_options={"api_endpoint": rest_endpoint} if rest_endpoint else None,
            default_query_job_config=job_config,
        )

    def get_bigquery_storage_client(self) -> BigQueryReadClient:
        """A Storage Read API client on the temporary key (plaintext gRPC for a loopback endpoint)."""
        require("bigquery")
        from google.cloud.bigquery_storage_v1 import BigQueryReadClient

        _, target = self.bigquery_endpoints
        credentials = self.get_bigquery_credentials()
        if not target:
            return BigQueryReadClient(credentials=credentials)
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        host = target.rsplit(":", 1)[0]
        channel_credentials = (
            grpc.local_channel_credentials() if is_loopback(host) else grpc.ssl_channel_credentials()
        )
        return BigQueryReadClient(
            credentials=credentials,
            client_options={"api_endpoint": target},
            transport=functools.partial(
                BigQueryReadGrpcTransport, ssl_channel_credentials=channel_credentials
            ),
        )

    def dataset_reference(self, dataset: str | None = None) -> str:
        """``project.dataset``: the tenant's dataset, or ``dataset`` (``name`` or ``project.name``)."""
        if dataset and "." in dataset:
            return dataset
        return f"{self.bigquery_project}.{dataset or self.bigquery_dataset}"

    def table_path(self, table: str, dataset: str | None = None) -> str:
        """The Storage API path ``projects/P/datasets/D/tables/T`` of ``T``, ``D.T`` or ``P.D.T``."""
        parts = [part.strip("`") for part in table.split(".")]
        if not all(parts) or len(parts) > 3:
            raise CarolConfigError(
                f"table {table!r} must be 'table', 'dataset.table' or 'project.dataset.table'."
            )
        if len(parts) < 3:
            base = self.dataset_reference(parts[0] if len(parts) == 2 else dataset).split(".", 1)
            parts = [*base, parts[-1]]
        return "projects/{}/datasets/{}/tables/{}".format(*parts)

    def with_bigquery_key(self, what: str, operation: Callable[[], T]) -> T:
        """Run ``operation``; when Google fails the key, renew it and try again with back-off.

        Like pycarol (bigquery.py L245-281: 8 tries, doubling back-off), but a key is minted at most once
        per operation: a key Carol has just minted may take a while to be accepted by Google, so it is
        retried, not replaced. A transport failure of the token exchange is retried with the same key.
        """
        renewed = False
        for attempt in range(1, self.bigquery_key_attempts + 1):
            try:
                return operation()
            except Exception as exc:  # narrowed just below, re-raised otherwise
                failure = key_failure(exc)
                if failure is None:
                    raise
                if attempt == self.bigquery_key_attempts:
                    raise CarolBigQueryError(
                        f"BigQuery did not accept Carol's temporary service-account key during {what} "
                        f"after {attempt} attempts{' and one renewal' if renewed else ''}: "
                        f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}",
                        reason="unauthenticated" if failure == "rejected" else "transport",
                    ) from None
                stale = TEMPORARY_KEYS.get(self._key_cache_key())
            wait = backoff_seconds(attempt, self.bigquery_key_backoff, MAX_KEY_BACKOFF)
            renew = failure == "rejected" and not renewed
            self.log.warning(
                "BigQuery %s the temporary key during %s (attempt %d of %d); %s in %.1f s",
                "rejected" if failure == "rejected" else "could not check",
                what,
                attempt,
                self.bigquery_key_attempts,
                "renewing it" if renew else "trying again",
                wait,
            )
            time.sleep(wait)
            if renew:
                self._temporary_key(stale=stale)
                renewed = True
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    # -- queries --------------------------------------------------------------------------------------
    def run_bigquery_query(
        self,
        sql: str,
        *,
        parameters: Sequence[Any] | None = None,
        dataset: str | None = None,
        labels: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> bigquery.QueryJob:
        """Run ``sql`` (GoogleSQL) and wait for it; BigQuery errors become :class:`CarolBigQueryError`."""
        require("bigquery")
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud import bigquery

        def start() -> bigquery.QueryJob:
            client = self.get_bigquery_client(dataset=dataset, labels=labels)
            config = bigquery.QueryJobConfig(query_parameters=list(parameters or []), dry_run=dry_run)
            if dry_run:
                config.use_query_cache = False
            try:
                return client.query(sql, job_config=config)
            except GoogleAPICallError as exc:
                if key_failure(exc):
                    raise  # the job was not created: with_bigquery_key renews the key and starts it again
                raise bigquery_error(exc, "dry run" if dry_run else "query") from None

        job = self.with_bigquery_key("a query", start)
        return job if dry_run else self.with_bigquery_key("a query", self._job_waiter(job))

    def _job_waiter(self, job: bigquery.QueryJob) -> Callable[[], bigquery.QueryJob]:
        """Wait for a started job; a try after a key failure reads the same job on a fresh client.

        The job is never started a second time (a DML statement must not run twice).
        """
        from google.api_core.exceptions import GoogleAPICallError

        tries = 0

        def wait() -> bigquery.QueryJob:
            nonlocal tries
            tries += 1
            current = job
            if tries > 1:
                fetched = self.get_bigquery_client().get_job(job.job_id, location=job.location)
                current = cast("bigquery.QueryJob", fetched)  # the same job: a query
            try:
                current.result()
            except GoogleAPICallError as exc:
                if key_failure(exc):
                    raise
                raise bigquery_error(exc, "query", job.job_id) from None
            return current

        return wait

    def query_bigquery_arrow(self, job: bigquery.QueryJob, *, max_streams: int = 4) -> pa.RecordBatchReader:
        """Stream a finished query's result table as Arrow through the Storage Read API.

        A query with ``ORDER BY`` is read through one stream, so the order is kept.
        """
        job.result()
        destination = job.destination
        if destination is None:
            raise CarolBigQueryError(
                f"BigQuery job {job.job_id} has no result table (a DDL/DML statement or a script).",
                job_id=job.job_id,
            )
        ordered = _ORDER_BY.search(job.query or "") is not None
        return self.read_bigquery_table(
            f"{destination.project}.{destination.dataset_id}.{destination.table_id}",
            max_streams=1 if ordered else max_streams,
        )

    # -- Storage Read API -----------------------------------------------------------------------------
    def read_bigquery_table(
        self,
        table: str,
        *,
        columns: Sequence[str] | None = None,
        row_restriction: str | None = None,
        sample_percentage: float | None = None,
        max_streams: int = 4,
        dataset: str | None = None,
    ) -> pa.RecordBatchReader:
        """Read a table through the Storage Read API, ``max_streams`` streams in parallel, as Arrow.

        Filters and sampling are sent whether or not ``columns`` is given. Row order across streams
        is not defined; batches are handed over through a bounded queue, so memory stays bounded.
        """
        require("bigquery")
        if max_streams < 1:
            raise CarolConfigError(f"max_streams must be at least 1, got {max_streams}.")
        if sample_percentage is not None and not 0 < float(sample_percentage) <= 100:
            raise CarolConfigError(f"sample_percentage must be in (0, 100], got {sample_percentage}.")
        path = self.table_path(table, dataset)
        session, storage = self.with_bigquery_key(
            f"a read of {table}",
            lambda: self._read_session(path, columns, row_restriction, sample_percentage, max_streams),
        )
        import pyarrow as pa

        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        self.log.info("BigQuery read of %s: %d stream(s)", path, len(session.streams))
        names = [stream.name for stream in session.streams]
        batches = read_streams(storage, names, schema, lambda exc: bigquery_error(exc, f"read of {path}"))
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _read_session(
        self,
        path: str,
        columns: Sequence[str] | None,
        row_restriction: str | None,
        sample_percentage: float | None,
        max_streams: int,
    ) -> tuple[Any, BigQueryReadClient]:
        from google.api_core.exceptions import GoogleAPICallError
        from google.cloud.bigquery_storage_v1 import types

        options = types.ReadSession.TableReadOptions(
            selected_fields=list(columns or []), row_restriction=row_restriction or ""
        )
        if sample_percentage is not None:
            options.sample_percentage = float(sample_percentage)
        storage = self.get_bigquery_storage_client()
        project = path.split("/")[1]
        try:
            session = storage.create_read_session(
                parent=f"projects/{project}",
                read_session=types.ReadSession(
                    table=path, data_format=types.DataFormat.ARROW, read_options=options
                ),
                max_stream_count=max_streams,
            )
        except GoogleAPICallError as exc:
            if key_failure(exc):
                raise  # no session was created: with_bigquery_key renews the key and asks again
            raise bigquery_error(exc, f"read session for {path}") from None
        return session, storage
