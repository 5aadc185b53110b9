"""Drive the reference SDK (pycarol 2.56.15, unmodified) against a running sandbox.

Run with ``.venv-pycarol/bin/python pycarol_probe.py INPUT.json OUTPUT.json``; the test that runs it
(test_pycarol_conformance.py) checks the sandbox's end state through the admin API. pycarol prints to
stdout, so results go to OUTPUT.json. Trust in the sandbox CA comes from REQUESTS_CA_BUNDLE/SSL_CERT_FILE.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


def carol(info: dict[str, Any], auth: Any, **kwargs: Any) -> Any:
    from pycarol import Carol

    options = {
        "domain": info["tenant"],
        "app_name": info["app_name"],
        "organization": info["organization"],
        "host": "localhost",
        "port": info["port"],
        "connector_id": info["connector_id"],
    }
    options.update(kwargs)
    return Carol(auth=auth, **options)


def logins(info: dict[str, Any], out: dict[str, Any]) -> Any:
    """Every auth mode: each must build a Carol client, whose constructor calls get_current()."""
    from pycarol import ApiKeyAuth, PwdAuth, PwdKeyAuth

    main = carol(info, PwdAuth(info["user"], info["password"]))
    out["pwd"] = main.get_current()
    out["pwd_user"] = main.current_user["mdmUserLogin"]
    mfa = carol(info, PwdAuth(info["mfa_user"], info["mfa_password"], mfa_code="123456"))
    out["mfa"] = mfa.get_current()
    out["mfa_user"] = mfa.current_user["mdmUserLogin"]
    out["api_key"] = carol(info, ApiKeyAuth(info["api_key"])).get_current()
    out["pwd_key_lazy"] = carol(info, PwdKeyAuth(info["access_token"], lazy_login=True)).get_current()
    org = carol(info, PwdAuth(info["user"], info["password"]), org_level=True, domain=None)
    out["org"] = org.get_current()
    out["org_user"] = org.current_user["mdmUserLogin"]
    return main


def staging(client: Any, out: dict[str, Any]) -> None:
    """Connector, schema, then one user-managed batch spanning two send_data calls."""
    from pycarol import Connectors, Staging

    connectors = Connectors(client)
    connector_id = connectors.create("probe_connector", label="Probe", group_name="Others")
    out["connector_id"] = connector_id
    out["connector_again"] = connectors.create("probe_connector")  # the 'already exists' path
    out["connector_by_name"] = connectors.get_by_name("probe_connector")["mdmId"]
    stg = Staging(client)
    first = [
        {"id": "1", "name": "ana", "amount": 1.5},
        {"id": "2", "name": "bia", "amount": 2.0},
        {"id": "3", "name": "caio", "amount": 3.25},
    ]
    second = [{"id": "4", "name": "duda", "amount": 4.0}, {"id": "5", "name": "enzo", "amount": 5.5}]
    stg.create_schema(
        data=first, staging_name="probe_customers", connector_id=connector_id, crosswalk_list=["id"]
    )
    out["schema"] = stg.get_schema("probe_customers", connector_id=connector_id)
    out["batch_id"] = stg.start_batch()
    stg.send_data("probe_customers", data=first, connector_id=connector_id, step_size=2, print_stats=False)
    stg.send_data("probe_customers", data=second, connector_id=connector_id, step_size=2, print_stats=False)
    out["summary_response"] = stg.end_batch()


def tasks_and_apps(client: Any, info: dict[str, Any], out: dict[str, Any]) -> None:
    from pycarol import Apps, Tasks
    from pycarol.logger import CarolHandler

    task = Tasks(client, task_id=info["task_id"])
    out["task_status"] = task.task_status
    out["add_log"] = task.add_log("probe: one log line", "INFO")
    out["add_logs"] = task.add_logs(
        [
            {"mdmTaskId": info["task_id"], "mdmLogMessage": f"probe: batch {n}", "mdmLogLevel": "DEBUG"}
            for n in (1, 2)
        ]
    )
    logger = logging.getLogger("probe")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(CarolHandler(client, task_id=info["task_id"]))
    logger.warning("probe: via CarolHandler")
    out["logs"] = task.get_logs()
    out["settings"] = Apps(client).get_settings(app_name=info["app_name"])


def queries(client: Any, out: dict[str, Any]) -> None:
    """A named query paged through its scroll, and processQuery (pycarol's ``process_bigquery``)."""
    import warnings

    from pycarol import Query
    from pycarol.cds import CDSGolden

    query = Query(client, page_size=2, print_status=False, save_results=False)
    out["named"] = query.named("probe_named", params={"region": "NE"}).go().results
    with warnings.catch_warnings():  # CDSGolden is deprecated, process_bigquery is not
        warnings.simplefilter("ignore")
        out["process"] = CDSGolden(client).process_bigquery("SELECT 1 AS id", dm_name="probe_dm")


def main() -> None:
    with open(sys.argv[1]) as handle:
        info = json.load(handle)
    out: dict[str, Any] = {}
    try:
        client = logins(info, out)
        staging(client, out)
        tasks_and_apps(client, info, out)
        queries(client, out)
        out["ok"] = True
    except Exception as exc:  # noqa: BLE001 - report whatever pycarol raised to the test
        out["ok"], out["error"] = False, f"{type(exc).__name__}: {exc}"
    with open(sys.argv[2], "w") as handle:
        json.dump(out, handle, default=str)


if __name__ == "__main__":
    main()
