"""A send that checks itself first: dry runs and schema drift, through CarolHook against the sandbox."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_provider_carol.exceptions import CarolConfigError, CarolError, CarolSchemaDriftError
from airflow_provider_carol.hooks.carol import CarolHook
from airflow_provider_carol.hooks.staging import drift, schema
from tests.hooks.hookutil import fast_retry_hook

STAGING = "customers"


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": i, "name": f"customer {i}", "address": {"city": "Recife"}} for i in range(start, n)]


def sent_requests(sandbox) -> list[dict]:
    """Intake and batch-summary requests: what a send that sends nothing must not make."""
    return [r for r in sandbox.requests() if "/staging/intake/" in r["path"] or "/summary" in r["path"]]


def schema_writes(sandbox) -> list[dict]:
    return [r for r in sandbox.requests() if r["path"].endswith("/schema") and r["method"] in ("POST", "PUT")]


def carol_properties(carol_hook: CarolHook) -> dict:
    return carol_hook.get_staging_schema(STAGING)["mdmStagingMapping"]["properties"]


@pytest.fixture
def with_schema(carol_sandbox) -> CarolHook:
    """The staging has a schema in Carol: id integer, name string, address.city string, since string."""
    carol_hook = fast_retry_hook()
    properties = {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "since": {"type": "date"},
    }
    carol_hook.put_staging_schema(STAGING, schema.schema_payload(STAGING, properties, ["id"]))
    return carol_hook


def test_dry_run_encodes_everything_reports_it_and_sends_nothing(with_schema, carol_sandbox):
    before = len(carol_sandbox.requests())
    summary = with_schema.send_to_staging(STAGING, rows(1200), chunk_size=500, dry_run=True).as_dict()
    assert summary["dry_run"] is True and summary["summary_sent"] is False
    assert (summary["records"], summary["chunks"], summary["requests"]) == (1200, 3, 3)
    assert summary["bytes"] > summary["compressed_bytes"] > 0
    assert summary["schema"] == {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    # 'since' is in Carol's schema but not in the records: reported, not refused.
    assert summary["schema_drift"] == {
        "added": {},
        "missing": {"since": "date"},
        "changed": {},
        "evolved": False,
    }
    assert sent_requests(carol_sandbox) == [] and carol_sandbox.batches() == []
    made = carol_sandbox.requests()[before:]
    assert {r["method"] for r in made} == {"GET"}  # the schema, and the tenant for the batch id: reads
    assert ("GET", f"/api/v2/staging/tables/{STAGING}/schema") in {(r["method"], r["path"]) for r in made}
    assert carol_sandbox.staging_count(STAGING) == 0


def test_dry_run_counts_match_the_real_send(with_schema, carol_sandbox):
    dry = with_schema.send_to_staging(STAGING, rows(900), chunk_size=200, dry_run=True)
    real = with_schema.send_to_staging(STAGING, rows(900), chunk_size=200)
    assert (dry.records, dry.requests, dry.bytes) == (real.records, real.requests, real.bytes)
    assert carol_sandbox.staging_count(STAGING) == 900


def test_dry_run_of_a_staging_without_schema_still_reports_the_inferred_schema(carol_sandbox):
    summary = fast_retry_hook().send_to_staging(STAGING, rows(10), dry_run=True)
    assert summary.schema["id"] == {"type": "integer"} and summary.schema_drift is None
    assert sent_requests(carol_sandbox) == []


def test_dry_run_of_bad_values_fails_like_the_send(carol_sandbox):
    with pytest.raises(CarolConfigError, match="Row 1, field 'when'"):
        fast_retry_hook().send_to_staging(
            STAGING, [{"id": 0, "when": 1}, {"id": 1, "when": object()}], dry_run=True
        )
    assert sent_requests(carol_sandbox) == []


def test_a_type_change_fails_by_default_naming_each_field_before_anything_is_sent(with_schema, carol_sandbox):
    records = [{"id": f"C{i}", "name": i, "email": f"{i}@x.com"} for i in range(50)]
    with pytest.raises(CarolSchemaDriftError) as failed:
        with_schema.send_to_staging(STAGING, records, chunk_size=10)
    message = str(failed.value)
    assert "field 'id' changed type: integer in Carol, string in the records" in message
    assert "field 'name' changed type: string in Carol, integer in the records" in message
    assert "email" not in message  # a new field only warns by default
    assert failed.value.drift["added"] == {"email": "string"}
    assert sent_requests(carol_sandbox) == [] and carol_sandbox.staging_count(STAGING) == 0


def test_new_fields_warn_by_default_and_the_send_goes_ahead(with_schema, carol_sandbox, capsys):
    records = [
        {**record, "email": "a@b.c", "address": {"city": "Natal", "zip": 59000}} for record in rows(30)
    ]
    summary = with_schema.send_to_staging(STAGING, records, chunk_size=10)
    assert summary.schema_drift["added"] == {"email": "string", "address.zip": "integer"}
    assert summary.summary_sent and carol_sandbox.staging_count(STAGING) == 30
    assert "schema drift: new field 'address.zip' (integer)" in capsys.readouterr().out
    assert schema_writes(carol_sandbox)[1:] == []  # only the fixture's schema create


def test_fail_policy_refuses_a_new_field(with_schema, carol_sandbox):
    records = [{**record, "email": "a@b.c"} for record in rows(5)]
    with pytest.raises(CarolSchemaDriftError, match="new field 'email' \\(string\\)"):
        with_schema.send_to_staging(STAGING, records, on_schema_drift="fail")
    assert sent_requests(carol_sandbox) == []


def test_warn_policy_sends_despite_a_type_change(with_schema, carol_sandbox):
    records = [{"id": f"C{i}", "name": "x"} for i in range(5)]
    summary = with_schema.send_to_staging(STAGING, records, on_schema_drift="warn")
    assert summary.schema_drift["changed"] == {"id": {"carol": "integer", "records": "string"}}
    assert carol_sandbox.staging_count(STAGING) == 5


def test_evolve_updates_carols_schema_then_sends(with_schema, carol_sandbox):
    records = [
        {"id": i, "name": "x", "score": i / 2, "address": {"city": "Natal", "zip": "59000"}} for i in range(8)
    ]
    records[0]["name"] = None  # nulls say nothing about a type
    summary = with_schema.send_to_staging(STAGING, records, on_schema_drift="evolve")
    assert summary.schema_drift["evolved"] is True
    stored = carol_properties(with_schema)
    assert stored["score"] == {"type": "double"}
    assert stored["address"]["properties"] == {"city": {"type": "string"}, "zip": {"type": "string"}}
    assert stored["since"] == {"type": "date"}  # missing fields are kept
    assert with_schema.get_staging_schema(STAGING)["mdmCrosswalkTemplate"] == {
        "mdmCrossreference": {STAGING: ["id"]}
    }
    # The schema was put before the first chunk was sent.
    paths = [(r["method"], r["path"]) for r in carol_sandbox.requests()]
    put = paths.index(("PUT", f"/api/v2/staging/tables/{STAGING}/schema"))
    first_intake = next(i for i, (_, path) in enumerate(paths) if "/staging/intake/" in path)
    assert put < first_intake and carol_sandbox.staging_count(STAGING) == 8


def test_evolve_in_a_dry_run_changes_nothing(with_schema, carol_sandbox):
    records = [{"id": 1, "name": "x", "score": 1.5}]
    summary = with_schema.send_to_staging(STAGING, records, on_schema_drift="evolve", dry_run=True)
    assert summary.schema_drift["added"] == {"score": "double"} and summary.schema_drift["evolved"] is False
    assert "score" not in carol_properties(with_schema)
    assert schema_writes(carol_sandbox)[1:] == [] and sent_requests(carol_sandbox) == []


def test_a_streamed_file_is_checked_on_its_first_block_before_any_chunk(with_schema, carol_sandbox, tmp_path):
    path = tmp_path / "customers.ndjson"
    path.write_text("".join(json.dumps({"id": f"C{i}", "name": "x"}) + "\n" for i in range(300)))
    with pytest.raises(CarolSchemaDriftError, match="field 'id' changed type"):
        with_schema.send_to_staging(STAGING, path=str(path), chunk_size=100)
    assert sent_requests(carol_sandbox) == []
    # The peeked block is put back: a send the check accepts sends every row once.
    path.write_text("".join(json.dumps({"id": i, "name": "x"}) + "\n" for i in range(300)))
    summary = with_schema.send_to_staging(STAGING, path=str(path), chunk_size=100)
    assert summary.records == 300 and carol_sandbox.staging_count(STAGING) == 300


def test_parquet_files_are_checked_on_their_metadata_for_every_file(with_schema, carol_sandbox, tmp_path):
    good = pa.table({"id": pa.array([1, 2], pa.int64()), "name": pa.array([None, None], pa.string())})
    pq.write_table(good, tmp_path / "a.parquet")
    bad = pa.table({"id": pa.array([1.5], pa.float64()), "name": pa.array(["x"])})
    pq.write_table(bad, tmp_path / "b.parquet")
    with pytest.raises(
        CarolConfigError, match=r"Column 'id' is integer in .*a.parquet but double in .*b.parquet"
    ):
        with_schema.send_to_staging(STAGING, path=str(tmp_path / "*.parquet"))
    (tmp_path / "b.parquet").unlink()
    summary = with_schema.send_to_staging(STAGING, path=str(tmp_path / "*.parquet"), dry_run=True)
    # An all-null column is still typed: the file says it is a string.
    assert summary.schema == {"id": {"type": "integer"}, "name": {"type": "string"}}
    assert summary.schema_drift["changed"] == {}
    assert sent_requests(carol_sandbox) == []


def test_bad_policy_is_refused_before_any_request(carol_sandbox):
    with pytest.raises(CarolConfigError, match=r"on_schema_drift must be None .* fail, warn, evolve"):
        fast_retry_hook().send_to_staging(STAGING, rows(1), on_schema_drift="ignore")
    assert carol_sandbox.requests() == []


@pytest.mark.parametrize(
    ("carol", "records", "changed"),
    [
        ("long", "integer", False),
        ("double", "integer", False),
        ("date", "string", False),  # JSON has no date type: ISO strings are how dates travel
        ("integer", "double", True),
        ("boolean", "string", True),
        ("string", "object", True),
    ],
)
def test_type_pairs_that_send_the_same_json_are_not_drift(carol, records, changed):
    found = drift.compare({"f": {"type": carol}}, {"f": {"type": records}})
    assert bool(found.changed) is changed


def test_a_dry_run_cannot_join_a_batch_or_complete_a_planned_one(carol_sandbox, tmp_path):
    carol_hook = fast_retry_hook()
    with (
        pytest.raises(CarolConfigError, match="a dry run sends nothing"),
        carol_hook.staging_batch() as batch,
    ):
        batch.send(STAGING, rows(5), dry_run=True)
    pq.write_table(pa.table({"id": list(range(10))}), tmp_path / "a.parquet")
    plan = carol_hook.plan_batch([str(tmp_path / "a.parquet")], chunk_size=4)
    (part,) = plan.partitions
    result = carol_hook.send_to_staging(STAGING, dry_run=True, **part).as_dict()
    assert result["dry_run"] and result["chunks"] == 3
    with pytest.raises(CarolError, match="was a dry run and sent nothing; the batch gets no summary"):
        carol_hook.finish_batch(plan, [result])
    assert sent_requests(carol_sandbox) == [] and carol_sandbox.batches() == []


def test_arrow_data_other_than_tables_gets_the_sources_clear_error(carol_sandbox):
    with pytest.raises(CarolConfigError, match="data must be a list of dicts"):
        fast_retry_hook().send_to_staging(STAGING, pa.array([1, 2]))
