"""Errors raised by the Carol provider: one small tree rooted at :class:`CarolError`.

Messages name the endpoint, the HTTP status and Carol's own error text; they never carry a secret.
Errors that another try cannot fix - a bad connection or argument, refused credentials, a request Carol
rejects as invalid - are also :class:`AirflowFailException`, so they fail the Airflow task at once
instead of spending its retries.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class CarolError(AirflowException):
    """Base class of every error this provider raises."""


class CarolConfigError(CarolError, AirflowFailException, ValueError):
    """The Carol connection or an operator argument is invalid; raised before any request is sent."""


class CarolSchemaDriftError(CarolConfigError):
    """The records' schema differs from the staging's schema in Carol in a way ``on_schema_drift`` refuses.

    Raised before any record is sent; ``drift`` is the field-by-field report:
    ``{"added": {path: type}, "missing": {path: type}, "changed": {path: {"carol", "records"}}}``.
    """

    def __init__(self, message: str, drift: dict[str, dict[str, object]]) -> None:
        super().__init__(message)
        self.drift = drift


class CarolConnectionError(CarolError):
    """Carol could not be reached (DNS, refused, TLS, timeout) after the retries allowed."""


class CarolApiError(CarolError):
    """Carol answered with an error status; carries Carol's ``errorCode``/``errorMessage`` fields."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | int | None = None,
        error_message: str | None = None,
        possible_responsible_field: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message)
        # Carol's HTTP status (None for errors without an answer); AirflowException's class attribute
        # of the same name is the status the Airflow API would answer, which does not apply here.
        self.status_code = status_code  # type: ignore[assignment]
        self.error_code = error_code
        self.error_message = error_message
        self.possible_responsible_field = possible_responsible_field
        self.endpoint = endpoint


class CarolAuthError(CarolApiError, AirflowFailException):
    """Authentication or authorisation failed (bad credentials, MFA required, token or key revoked)."""


class CarolInvalidRequest(CarolApiError, AirflowFailException):
    """Carol refused the request as invalid (HTTP 400, 413 or 422): resending it cannot succeed."""


class CarolNotFound(CarolApiError):
    """Carol answered 404 for the named resource."""


class CarolTaskFailed(CarolError):
    """A Carol long task ended FAILED or CANCELED."""


class CarolBigQueryError(CarolApiError):
    """BigQuery failed a Carol query or read; the message carries BigQuery's text and the job id."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        reason: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, error_message=reason, endpoint="bigquery")
        self.job_id = job_id
        self.reason = reason
