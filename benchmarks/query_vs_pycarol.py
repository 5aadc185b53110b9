"""BigQuery table -> DuckDB: pycarol 2.56.15 ``BQStorage`` + ``Memory`` vs ``CarolDuckDBOperator``, one run.

    .venv/bin/python benchmarks/query_vs_pycarol.py [--rows 1000000] [--streams 4] [--repeat 1]
    .venv/bin/python benchmarks/query_vs_pycarol.py --rtt-ms 0,20,80 [--repeat 3] [--link auto]

One ``carol-sandbox --bigquery`` serves both sides: the sandbox mints the temporary keys and the local
BigQuery emulator (local-bigquery 0.3.2, see docs/bigquery.md) holds a generated table of ``--rows`` rows
and 6 columns (id, grp, val, price, name, ts). Each side runs in its own subprocess, so peak RSS
(``ru_maxrss``) is per side, and does the same work: read the whole table through the Storage Read API
with ``--streams`` streams, load it into an in-memory DuckDB, run one GROUP BY, check the result.

- ours: ``CarolDuckDBOperator(tables={"bench": ...}).execute()``. Both sides get their temporary key before
  the clock starts (ours from its hook, pycarol's from the harness), so the timing is the read + load + query.
- pycarol: ``BQStorage(carol).query(...)`` then ``Memory().add(...)`` and ``Memory.query(...)``.
  pycarol cannot be pointed at an emulator, so its side is patched (a baseline, not a fix): the
  ``TokenManager`` returns the key the harness minted from the sandbox (pycarol would otherwise also
  fetch the storage token and look the key up in GCS), and ``BQStorage._generate_client`` builds the
  same ``BigQueryReadClient`` but on ``grpc.local_channel_credentials()`` to the emulator. pycarol
  2.56.15 does not install pyarrow, which its ARROW read path needs, so pyarrow is installed into an
  overlay folder (``benchmarks/results/pycarol-overlay``) on its ``PYTHONPATH``; ``.venv-pycarol``
  itself is left untouched.

Prints rows/s, seconds, peak RSS and the RSS added by the read (peak minus RSS just before it) per side,
and the ratios. The private key reaches the pycarol child on stdin, never on disk.

With ``--rtt-ms`` both sides run behind a link with that round-trip time (``benchmarks/_network.py``),
and every endpoint they use is behind it: the sandbox (ours fetches its key there), the emulator's REST
API and its gRPC Storage Read API. The link must leave the client a 127.0.0.1 address of its own,
because both sides reach the emulator through ``grpc.local_channel_credentials()``, so ``auto`` picks
the TUN delay line or the relay, never netem. Per RTT the sides alternate ``--repeat`` times; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYCAROL_PYTHON = ROOT / ".venv-pycarol" / "bin" / "python"
OVERLAY = ROOT / "benchmarks" / "results" / "pycarol-overlay"
SQL = "SELECT grp, COUNT(*) AS n, SUM(val) AS total FROM bench GROUP BY grp ORDER BY grp"
GROUPS = 10


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# ---------------------------------------------------------------------------------------------- children
def child_ours(setup: dict) -> dict:
    from airflow_provider_carol.operators.duckdb import CarolDuckDBOperator
    from airflow_provider_carol.sandbox.control import Sandbox

    os.environ["AIRFLOW_CONN_CAROL_BENCH"] = Sandbox(setup["info"]).connection_json("api_key")
    import duckdb  # noqa: F401 - imported before the clock, as pycarol's side imports its modules
    import google.cloud.bigquery_storage_v1  # noqa: F401

    operator = CarolDuckDBOperator(
        task_id="bench",
        carol_conn_id="carol_bench",
        sql=SQL,
        tables={"bench": {"table": "bench"}},
        max_streams=setup["streams"],
    )
    operator.hook.get_bigquery_credentials()  # the key is minted before the clock, as on pycarol's side
    before = current_rss_mb()
    started = time.perf_counter()
    result = operator.execute({})
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": sum(row["n"] for row in result),
        "groups": len(result),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def child_pycarol(setup: dict) -> dict:
    import functools

    import grpc
    from google.cloud import bigquery_storage
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport
    from google.oauth2.service_account import Credentials
    from pycarol import bigquery as pycarol_bigquery
    from pycarol.memory import Memory

    key = json.loads(sys.stdin.readline())
    info = setup["info"]

    class Carol:  # what BQStorage reads from a Carol object: get_current()
        def get_current(self) -> dict:
            return {
                "env_id": info["tenant_id"],
                "env_name": info["tenant"],
                "org_id": info["org_id"],
                "org_name": info["organization"],
                "org_level": False,
            }

    class TokenManager:  # pycarol's validate(): build the client, run the operation
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        def validate(self, generate_client, operation):
            return operation(generate_client(key))

    def generate_client(service_account: dict):  # pycarol's own construction, plus the emulator endpoint
        return bigquery_storage.BigQueryReadClient(
            credentials=Credentials.from_service_account_info(service_account),
            client_options={"api_endpoint": info["bigquery_storage_endpoint"]},
            transport=functools.partial(
                BigQueryReadGrpcTransport, ssl_channel_credentials=grpc.local_channel_credentials()
            ),
        )

    pycarol_bigquery.TokenManager = TokenManager
    pycarol_bigquery.BQStorage._generate_client = staticmethod(generate_client)
    before = current_rss_mb()
    started = time.perf_counter()
    frame = pycarol_bigquery.BQStorage(Carol()).query("bench", max_stream_count=setup["streams"])
    memory = Memory()
    memory.add("bench", frame)
    result = memory.query(SQL)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": int(result["n"].sum()),
        "groups": len(result),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


# ---------------------------------------------------------------------------------------------- harness
def start_sandbox() -> tuple[subprocess.Popen, dict]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_carol.sandbox", "--bigquery"],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    line = process.stdout.readline() if process.stdout else b""
    if not line:
        process.wait()
        sys.exit("carol-sandbox --bigquery did not start (run scripts/bootstrap-bigquery.sh first)")
    return process, json.loads(line)


def seed(info: dict, rows: int) -> None:
    import datetime as dt
    import io

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    ids = pa.array(range(rows), pa.int64())
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    table = pa.table(
        {
            "id": ids,
            "grp": pc.remainder(ids, GROUPS),
            "val": pc.multiply(pc.cast(ids, pa.float64()), 0.5),
            "price": pc.divide(pc.cast(pc.remainder(ids, 997), pa.float64()), 7.0),
            "name": pc.binary_join_element_wise("name-", pc.cast(ids, pa.string()), ""),
            "ts": pa.array(
                [start + dt.timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")
            ),
        }
    )
    project, dataset = f"carol-{info['tenant_id'][:20]}", info["tenant_id"]
    client = bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": info["bigquery_endpoint"]},
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
    )
    client.load_table_from_file(buffer, f"{project}.{dataset}.bench", job_config=config, size=None).result()


def mint_key(info: dict) -> str:
    """A temporary key from the sandbox, as pycarol's TokenManager would POST for it."""
    import requests

    headers = {"x-auth-key": info["api_key"], "x-auth-connectorid": info["connector_id"]}
    response = requests.post(
        f"{info['url']}/sql/v1/api/v1/create_temporary_key",
        headers=headers,
        json={"expirationTime": 1, "mdmOrgId": info["org_id"], "mdmTenantId": info["tenant_id"]},
        timeout=60,
    )
    response.raise_for_status()
    return response.text.replace("\n", "")


def ensure_overlay() -> None:
    """pyarrow for pycarol's ARROW path, in a folder of its own (``.venv-pycarol`` stays as built)."""
    check = subprocess.run(
        [str(PYCAROL_PYTHON), "-c", "import pyarrow"],
        env={**os.environ, "PYTHONPATH": str(OVERLAY)},
        capture_output=True,
    )
    if check.returncode == 0:
        return
    import pyarrow

    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "uv"),
            "pip",
            "install",
            "-q",
            "--python",
            str(PYCAROL_PYTHON),
            "--target",
            str(OVERLAY),
            f"pyarrow=={pyarrow.__version__}",
        ],
        check=True,
    )


def run_child(side: str, setup: dict, key: str | None, wrap: Callable[[list[str]], list[str]] = list) -> dict:
    python = str(PYCAROL_PYTHON) if side == "pycarol" else sys.executable
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if side == "pycarol":
        env["PYTHONPATH"] = str(OVERLAY)
    else:
        env.setdefault("AIRFLOW_HOME", str(ROOT / "benchmarks" / "results" / "airflow-home"))
    done = subprocess.run(
        wrap([python, __file__, "--child", side, "--setup", json.dumps(setup)]),
        input=(key + "\n") if key else "",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode != 0:
        sys.exit(f"{side} side failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per side; loopback keeps the best, --rtt-ms the median"
    )
    parser.add_argument("--rtt-ms", help="comma-separated round-trip times, e.g. 0,20,80 (WAN mode)")
    parser.add_argument("--link", default="auto", choices=["auto", "tun", "relay"])
    parser.add_argument("--child", choices=["ours", "pycarol"], help=argparse.SUPPRESS)
    parser.add_argument("--setup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child = child_ours if args.child == "ours" else child_pycarol
        print(json.dumps(child(json.loads(args.setup))))
        return

    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    ensure_overlay()
    sandbox, info = start_sandbox()
    try:
        started = time.perf_counter()
        seed(info, args.rows)
        print(f"seeded {args.rows:,} rows x 6 columns in {time.perf_counter() - started:.1f} s")
        if args.rtt_ms:
            run_wan(args, info)
            return
        print("link: loopback (no added latency; use --rtt-ms for a WAN link)")
        results = run_sides({"info": info, "streams": args.streams}, info, args)
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=30)
    report(results, args.rows)


def run_sides(
    setup: dict, info: dict, args: argparse.Namespace, wrap: Callable[[list[str]], list[str]] = list
) -> dict[str, list[dict]]:
    """``--repeat`` alternating runs of both sides; each must return the right row and group counts."""
    results: dict[str, list[dict]] = {"pycarol": [], "ours": []}
    for _ in range(args.repeat):
        for side in ("pycarol", "ours"):
            outcome = run_child(side, setup, mint_key(info) if side == "pycarol" else None, wrap)
            if (outcome["rows"], outcome["groups"]) != (args.rows, GROUPS):
                sys.exit(f"{side}: wrong result {outcome}")
            results[side].append(outcome)
    return results


def client_view(info: dict, link: Any) -> dict:
    """``info`` with every endpoint replaced by the port a client dials through ``link``."""
    rest_host, rest_port = info["bigquery_endpoint"].rsplit(":", 1)
    grpc_host, grpc_port = info["bigquery_storage_endpoint"].rsplit(":", 1)
    port = link.expose(info["port"])
    return {
        **info,
        "port": port,
        "url": f"http://127.0.0.1:{port}",
        "bigquery_endpoint": f"{rest_host}:{link.expose(int(rest_port))}",
        "bigquery_storage_endpoint": f"{grpc_host}:{link.expose(int(grpc_port))}",
    }


def run_wan(args: argparse.Namespace, info: dict) -> None:
    """Both sides behind the link at every RTT of ``--rtt-ms``; a table of medians per RTT."""
    sys.path.insert(0, str(ROOT))
    from benchmarks._network import format_probe, wan_link

    rtts = [float(value) for value in args.rtt_ms.split(",")]
    by_rtt: dict[float, dict[str, list[dict]]] = {}
    measured: dict[float, float] = {}
    with wan_link(args.link, need_loopback_source=True) as link:
        client = client_view(info, link)
        grpc_port = int(client["bigquery_storage_endpoint"].rsplit(":", 1)[1])
        for rtt in rtts:
            link.set_rtt(rtt)
            print(link.describe())
            probe = link.probe(client["port"])
            measured[rtt] = probe["request_median_ms"]
            print(f"  sandbox: {format_probe(probe)}")
            print(f"  gRPC endpoint: {format_probe(link.probe(grpc_port, http=False))}")
            by_rtt[rtt] = run_sides({"info": client, "streams": args.streams}, info, args, link.wrap)
    print(
        f"\n{args.rows:,} rows x 6 columns, {args.streams} streams; median of {args.repeat} alternating runs"
    )
    print(f"{'side':8} {'rtt ms':>6} {'measured':>8} {'seconds':>8} {'rows/s':>12} {'peak RSS MB':>12}")
    for rtt in rtts:
        seconds = {side: statistics.median(r["seconds"] for r in runs) for side, runs in by_rtt[rtt].items()}
        for side, runs in by_rtt[rtt].items():
            print(
                f"{side:8} {rtt:>6g} {measured[rtt]:>8.1f} {seconds[side]:8.2f} "
                f"{args.rows / seconds[side]:12,.0f} {max(r['peak_rss_mb'] for r in runs):12.0f}"
            )
        print(
            f"speed ratio at rtt {rtt:g} ms (ours / pycarol rows/s): "
            f"{seconds['pycarol'] / seconds['ours']:.2f}x"
        )


def report(results: dict[str, list[dict]], rows: int) -> None:
    """The loopback table: best time per side, peak RSS and the RSS the read added."""
    best = {side: min(runs, key=lambda r: r["seconds"]) for side, runs in results.items()}
    peak = {side: max(r["peak_rss_mb"] for r in runs) for side, runs in results.items()}
    added = {side: max(r["peak_rss_mb"] - r["rss_before_mb"] for r in runs) for side, runs in results.items()}
    print(f"{'side':8} {'seconds':>8} {'rows/s':>12} {'peak RSS MB':>12} {'RSS added MB':>13}")
    for side in ("pycarol", "ours"):
        print(
            f"{side:8} {best[side]['seconds']:8.2f} {rows / best[side]['seconds']:12,.0f} "
            f"{peak[side]:12.0f} {added[side]:13.0f}"
        )
    print(f"speed ratio (ours / pycarol rows/s): {best['pycarol']['seconds'] / best['ours']['seconds']:.2f}x")
    print(f"peak RSS ratio (ours / pycarol): {peak['ours'] / peak['pycarol']:.2f}")
    print(f"RSS added by the read ratio (ours / pycarol): {added['ours'] / added['pycarol']:.2f}")


if __name__ == "__main__":
    main()
