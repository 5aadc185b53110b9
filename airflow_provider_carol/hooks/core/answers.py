"""Reading Carol's answers the way the evidence shows them (``docs/carol-api-contract.md``).

Where callers that ran against real tenants saw several shapes, every one of them is accepted; where
nothing is known, a surprising answer fails with an error that names the fields it carried (names only,
never values). A call that started work in Carol and answered something unreadable is never resent: its
answer is logged, redacted, so the work can be found in Carol.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow_provider_carol.exceptions import (
    CarolApiError,
    CarolStartedUnreadable,
    CarolUnexpectedAnswer,
)
from airflow_provider_carol.hooks.core.redaction import redact_answer, redact_text

log = logging.getLogger("airflow_provider_carol.answers")

#: Where calls that start a long task put its id (carol-evidence.md, "Other task-creating calls"):
#: app process execute, processData, consolidate -> ``data.mdmId``; staging drop, clearData -> ``taskId``;
#: install, reprocess -> ``mdmId``; ``data.taskId`` by symmetry (assumed).
TASK_ID_PATHS = ("data.mdmId", "mdmId", "taskId", "data.taskId")
_MISSING = object()


def lookup(body: object, path: str) -> object:
    """The value at a dotted ``path`` of a JSON object, or :data:`_MISSING`."""
    value = body
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def has(body: object, path: str) -> bool:
    """Whether the answer carries ``path`` (a dotted field path)."""
    return lookup(body, path) is not _MISSING


def field_names(body: object, depth: int = 2) -> list[str]:
    """The answer's field names, dotted into nested objects up to ``depth`` levels; values never."""
    if not isinstance(body, dict):
        return [f"({type(body).__name__})"]
    names: list[str] = []
    for key, value in body.items():
        names.append(str(key))
        if depth > 1 and isinstance(value, dict):
            names.extend(f"{key}.{inner}" for inner in field_names(value, depth - 1))
    return sorted(names)


def describe(body: object) -> str:
    """``fields a, b.c`` (or the JSON type when the answer is not an object), for error messages."""
    names = field_names(body)
    return "fields " + ", ".join(names) if names and not names[0].startswith("(") else f"a JSON {names[0]}"


def refused(body: object, what: str, endpoint: str) -> CarolApiError | None:
    """``{"success": false, ...}`` as a clear error (Carol's own message when it gave one), else None."""
    if not isinstance(body, dict) or body.get("success") is not False:
        return None
    detail = body.get("errorMessage") or body.get("message")
    text = redact_text(str(detail)) if detail else f"no message ({describe(body)})"
    return CarolApiError(f"{what}: Carol answered success=false: {text}", endpoint=endpoint)


def task_id_in(body: object, what: str, endpoint: str, *, paths: Sequence[str] = TASK_ID_PATHS) -> str:
    """The id of the long task a call started, from any shape the evidence shows.

    :raises CarolApiError: when Carol answered ``success: false``.
    :raises CarolStartedUnreadable: when no id can be read; the redacted answer is logged first, and
        the call is not resent (the work may be running in Carol).
    """
    error = refused(body, what, endpoint)
    if error is not None:
        raise error
    for path in paths:
        value = text_at(body, path)
        if value is not None:
            return value.strip()
    log.error("%s: Carol's answer names no task; the answer, redacted: %s", what, redact_answer(body))
    raise CarolStartedUnreadable(
        f"{what}: Carol accepted the call but its answer names no task (expected one of "
        f"{', '.join(paths)}; got {describe(body)}). It was not resent, because the work may be running: "
        "look for it in Carol's task list before running this task again.",
        endpoint=endpoint,
        fields=field_names(body),
    )


def task_object(body: object, task_id: str) -> dict[str, object] | None:
    """The task object a start call answered with (``data`` or the body itself), when it is that task."""
    for candidate in (lookup(body, "data"), body):
        if isinstance(candidate, dict) and str(candidate.get("mdmId") or "") == task_id:
            return candidate
    return None


def text_at(body: object, path: str) -> str | None:
    """A non-empty string (or number) field as text, else None (absent, null, empty or another type)."""
    value = lookup(body, path)
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value)
    return None


def required_text(body: object, path: str, what: str, endpoint: str) -> str:
    """A non-empty string (or number) field the provider cannot work without; else a clear error."""
    value = text_at(body, path)
    if value is not None:
        return value
    raise CarolUnexpectedAnswer(
        f"{what}: Carol's answer has no {path} (got {describe(body)}).",
        endpoint=endpoint,
        fields=field_names(body),
    )
