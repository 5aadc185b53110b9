"""BigQuery job labels: the tenant, the organization and the running Airflow task, sanitised.

BigQuery refuses a job whose labels break its rules, so every value is lower-cased and reduced to
letters, digits, ``_`` and ``-``; more than 64 labels is an error naming the count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from airflow_provider_carol.exceptions import CarolConfigError

LABEL_SOURCE = "airflow-provider-carol"
_LABEL_VALUE_BAD = re.compile(r"[^\w-]", re.UNICODE)
_MAX_LABELS = 64


def sanitize_label_key(key: str) -> str:
    """A BigQuery label key: lowercase letters, digits, ``_``/``-``, starts with a letter, <= 63 chars."""
    text = _LABEL_VALUE_BAD.sub("_", str(key).strip().lower())
    if not text or not text[0].isalpha():
        text = f"l_{text}"
    return text[:63]


def sanitize_label_value(value: object) -> str:
    """A BigQuery label value: lowercase letters, digits, ``_``/``-``, at most 63 chars (may be empty)."""
    return _LABEL_VALUE_BAD.sub("_", str(value).strip().lower())[:63]


def build_labels(*sources: Mapping[str, object] | None) -> dict[str, str]:
    """Merge label mappings (later wins), sanitised; empty values are dropped, more than 64 is an error."""
    labels: dict[str, str] = {}
    for source in sources:
        for key, value in (source or {}).items():
            if value is None:
                continue
            clean = sanitize_label_value(value)
            if clean:
                labels[sanitize_label_key(key)] = clean
    if len(labels) > _MAX_LABELS:
        raise CarolConfigError(f"BigQuery allows at most {_MAX_LABELS} job labels; got {len(labels)}.")
    return labels


def airflow_labels() -> dict[str, str | None]:
    """``dag``/``task``/``run`` of the running Airflow task; empty outside a task."""
    from airflow.providers.common.compat.sdk import AirflowException, get_current_context

    try:
        context = get_current_context()
    except (RuntimeError, AirflowException, KeyError, AttributeError):  # 2.11's raises AirflowException
        return {}
    ti = context.get("ti")
    return {
        "dag": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
        "task": getattr(ti, "task_id", None),
        "run": context.get("run_id"),
    }
