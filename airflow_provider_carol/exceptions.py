"""Errors raised by the Carol provider: one small tree rooted at :class:`CarolError`.

Messages name the endpoint, the HTTP status and Carol's own error text; they never carry a secret.
Errors that another try cannot fix - a bad connection or argument, refused credentials, a request Carol
rejects as invalid - are also :class:`AirflowFailException`, so they fail the Airflow task at once
instead of spending its retries.
"""

from __future__ import annotations

from typing import TypedDict

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


class ApiFields(TypedDict):
    """What Carol said in an error answer (the keyword arguments of :class:`CarolApiError`)."""

    status_code: int | None
    error_code: str | int | None
    error_message: str | None
    possible_responsible_field: str | None
    endpoint: str | None
    application_error_code: str | int | None


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
        application_error_code: str | int | None = None,
    ) -> None:
        super().__init__(message)
        # Carol's HTTP status (None for errors without an answer); AirflowException's class attribute
        # of the same name is the status the Airflow API would answer, which does not apply here.
        self.status_code = status_code  # type: ignore[assignment]
        self.error_code = error_code
        self.error_message = error_message
        self.possible_responsible_field = possible_responsible_field
        self.endpoint = endpoint
        #: Carol's ``applicationErrorCode`` (``null`` in every answer seen so far; carol-evidence.md).
        self.application_error_code = application_error_code

    def api_fields(self) -> ApiFields:
        """Carol's fields of this error, to raise another one that says more about the same answer."""
        return {
            "status_code": self.status_code,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "possible_responsible_field": self.possible_responsible_field,
            "endpoint": self.endpoint,
            "application_error_code": self.application_error_code,
        }


class CarolAuthError(CarolApiError, AirflowFailException):
    """Authentication or authorisation failed (bad credentials, MFA required, token or key revoked)."""


class CarolInvalidRequest(CarolApiError, AirflowFailException):
    """Carol refused the request as invalid (HTTP 400, 413 or 422): resending it cannot succeed."""


class CarolNotFound(CarolApiError):
    """Carol answered 404 for the named resource."""


class CarolUnexpectedAnswer(CarolApiError):
    """Carol answered 2xx with a body the provider cannot read; the message names the fields it carried.

    Only field names reach the message, never values. Reads may be retried (a later answer may differ).
    """

    def __init__(self, message: str, *, endpoint: str | None = None, fields: list[str] | None = None) -> None:
        super().__init__(message, endpoint=endpoint)
        self.fields = list(fields or [])


class CarolStartedUnreadable(CarolUnexpectedAnswer, AirflowFailException):
    """A call that starts work in Carol (an app process, a processQuery) answered with no readable task id.

    The work may be running: the call is never resent, and the Airflow task fails without retrying
    (a retry would start it again). The answer is logged, redacted, so the task can be found in Carol.
    """


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
