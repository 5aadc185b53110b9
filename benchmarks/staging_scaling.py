"""Memory and time of ``send_to_staging`` as the source grows: Parquet 10k..10M rows, SQLite 1M and 10M.

    .venv/bin/python benchmarks/staging_scaling.py [--sizes 10k,100k,1M,10M] [--sql-sizes 1M,10M]
    .venv/bin/python benchmarks/staging_scaling.py --sizes 10k,100k --sql-sizes 10k    # a quick CI run

The claim under test: streaming sources are sent in bounded memory, so the sender's peak RSS barely
moves from 1M to 10M rows while the time grows linearly. Rows are the 8 fields of
``staging_vs_pycarol.py``'s records (id, name, email, amount, active, created_at, address, score),
generated vectorised with pyarrow (checked against ``make_records`` on a sample) into ``--data-dir``
(a temp dir by default; files there are reused on the next run). SQLite gets the same rows, with
``address`` as JSON text, and is read through an Airflow ``sqlite`` connection
(``send_to_staging(sql=..., sql_conn_id=...)``).

Each size is sent by a child process of its own (the hook's default chunk size and requests in flight)
to one ``carol-sandbox --tls`` on loopback; the child reports its peak RSS (``VmHWM``, which unlike
``ru_maxrss`` does not inherit this parent's) and its RSS after imports and connecting. The sandbox
keeps every stored record in memory (decoded JSON, ~250 bytes a row, no count-only mode), so its RSS is
printed too and a size it cannot hold in the machine's available memory is skipped with a note. After
each size the admin API must show the row count, one complete batch and a matching summary.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._pycarol_send import make_records, peak_rss_mb  # noqa: E402

CITIES = ["Sao Paulo", "Rio de Janeiro", "Belo Horizonte", "Curitiba", "Porto Alegre", "Recife"]
BLOCK = 1_000_000  # rows generated at a time
ROW_GROUP = 50_000  # as staging_vs_pycarol.write_parquet
SANDBOX_BYTES_PER_ROW = 400  # measured ~250 bytes of stored JSON per row, plus chunk and allocator overhead
SQL = "SELECT * FROM bench"


# ------------------------------------------------------------------------------------- the rows
def block(start: int, count: int) -> Any:
    """Rows ``start..start+count-1`` as a pyarrow Table, value for value those of ``make_records``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = np.arange(start, start + count, dtype=np.int64)

    def padded(values: Any, width: int) -> Any:
        return pc.utf8_lpad(pa.array(values).cast(pa.string()), width=width, padding="0")

    def join(*parts: Any) -> Any:
        return pc.binary_join_element_wise(*parts, "")

    created = join(
        "2024-", padded(1 + ids % 12, 2), "-", padded(1 + ids % 28, 2), "T", padded(ids % 24, 2),
        ":", padded(ids % 60, 2), ":", padded(ids % 59, 2), "Z",
    )  # fmt: skip
    address = pa.StructArray.from_arrays(
        [
            pa.array(CITIES).take(pa.array(ids % len(CITIES))),
            join(padded(ids % 99999, 5), "-000"),
            pa.array(ids % 1000),
        ],
        names=["city", "zip", "number"],
    )
    amounts = np.array([round(value, 2) for value in (ids * 0.37 % 10_000).tolist()])  # Python's rounding
    return pa.table(
        {
            "id": pa.array(ids),
            "name": join("Customer ", padded(ids, 7)),
            "email": join("customer", pa.array(ids).cast(pa.string()), "@example.com"),
            "amount": pa.array(amounts),
            "active": pa.array(ids % 3 != 0),
            "created_at": created,
            "address": address,
            "score": pa.array((ids * 7919) % 1000 / 10),
        }
    )


def check_generator() -> None:
    """The vectorised rows must equal ``make_records`` (the benchmark's reference records)."""
    for start in (0, 9_999_000):
        if block(start, 1000).to_pylist() != make_records(1000, start):
            sys.exit(f"the vectorised generator differs from make_records at rows {start}..{start + 999}")


def write_parquet(path: Path, rows: int) -> None:
    import pyarrow.parquet as pq

    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, block(0, 1).schema) as writer:
        for start in range(0, rows, BLOCK):
            writer.write_table(block(start, min(BLOCK, rows - start)), row_group_size=ROW_GROUP)
    partial.rename(path)


def write_sqlite(path: Path, rows: int) -> None:
    """Table ``bench`` with the same 8 columns; ``address`` is JSON text (SQL has no nested dicts)."""
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with sqlite3.connect(partial) as db:
        db.execute(
            "CREATE TABLE bench (id INTEGER PRIMARY KEY, name TEXT, email TEXT, amount REAL, "
            "active INTEGER, created_at TEXT, address TEXT, score REAL)"
        )
        for start in range(0, rows, BLOCK):
            table = block(start, min(BLOCK, rows - start))
            columns = [table.column(name).to_pylist() for name in table.column_names]
            columns[6] = [json.dumps(value) for value in columns[6]]
            db.executemany("INSERT INTO bench VALUES (?, ?, ?, ?, ?, ?, ?, ?)", zip(*columns, strict=True))
    partial.rename(path)


def source_file(data_dir: Path, kind: str, rows: int) -> Path:
    """The Parquet or SQLite file of ``rows`` rows, generated unless a previous run left it."""
    path = data_dir / f"bench-{rows}.{'parquet' if kind == 'parquet' else 'sqlite'}"
    if not path.exists():
        started = time.perf_counter()
        (write_parquet if kind == "parquet" else write_sqlite)(path, rows)
        print(f"  generated {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


# ------------------------------------------------------------------------------------- the child
def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def child(kind: str, info: dict, path: str) -> dict:
    """Send one source with the hook's defaults; report time, peak RSS and RSS before the send."""
    from airflow_provider_carol.hooks.carol import CarolHook
    from airflow_provider_carol.sandbox.control import Sandbox

    os.environ["AIRFLOW_CONN_CAROL_BENCH"] = Sandbox(info).connection_json("api_key")
    os.environ["AIRFLOW_CONN_BENCH_SQLITE"] = json.dumps({"conn_type": "sqlite", "host": path})
    hook = CarolHook("carol_bench")
    hook.get_current()  # imports and the connection are not part of the send
    if kind == "sql":
        import airflow.providers.sqlite.hooks.sqlite  # noqa: F401 - imported before the baseline
    before = current_rss_mb()
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if kind == "parquet":
        summary = hook.send_to_staging("bench", path=path)
    else:
        summary = hook.send_to_staging("bench", sql=SQL, sql_conn_id="bench_sqlite")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_seconds": after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime,
        "records": summary.records,
        "requests": summary.requests,
        "seconds": seconds,
        "records_per_s": summary.records / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_send_mb": before,
    }


# ------------------------------------------------------------------------------------- the parent
def parse_sizes(text: str) -> list[int]:
    """``10k,1M`` -> [10000, 1000000]."""
    factors = {"k": 1_000, "m": 1_000_000}
    sizes = []
    for item in filter(None, (part.strip().lower() for part in text.split(","))):
        factor = factors.get(item[-1], 1)
        sizes.append(int(float(item[:-1] if factor > 1 else item) * factor))
    return sizes


def process_memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of another process (the sandbox)."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values


def cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of another process (the sandbox), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def available_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        return next(int(line.split()[1]) / 1024 for line in meminfo if line.startswith("MemAvailable:"))


def run_size(kind: str, rows: int, ctx: dict) -> dict | None:
    """Generate, send in a child, verify, measure the sandbox; None if the sandbox could not hold it."""
    from benchmarks.staging_vs_pycarol import run_child, verify

    sandbox, process = ctx["sandbox"], ctx["process"]
    need = rows * SANDBOX_BYTES_PER_ROW / 2**20
    if need > available_mb() * 0.8:
        print(
            f"  SKIPPED {kind} {rows:,}: the sandbox would need ~{need:,.0f} MB to keep the rows, "
            f"{available_mb():,.0f} MB available",
            file=sys.stderr,
        )
        return None
    path = source_file(ctx["data_dir"], kind, rows)
    sandbox.reset()
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--info",
        json.dumps(ctx["info"]),
        "--path",
        str(path),
    ]
    load, server_cpu = os.getloadavg()[0], cpu_seconds(process.pid)
    result = run_child(command, ctx["env"])
    result["sandbox_cpu_seconds"] = cpu_seconds(process.pid) - server_cpu
    result["load_before"] = load
    verify(sandbox, rows, check_ids=False)
    result["sandbox"] = process_memory_mb(process.pid)
    sandbox.reset()
    print(
        f"  {kind} {rows:,}: {result['records_per_s']:,.0f} records/s in {result['seconds']:.1f} s, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB, verified",
        file=sys.stderr,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1M,10M", help="Parquet row counts (k/M suffixes)")
    parser.add_argument("--sql-sizes", default="1M,10M", help="SQLite row counts; empty: none")
    parser.add_argument("--data-dir", type=Path, help="where the generated files go (kept and reused)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds over every size (interleaved); median")
    parser.add_argument("--child", choices=["parquet", "sql"], help=argparse.SUPPRESS)
    parser.add_argument("--info", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, json.loads(args.info), args.path)))
        return
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    from airflow_provider_carol.hooks.staging.codec import DEFAULT_CHUNK_SIZE
    from airflow_provider_carol.hooks.staging.sender import DEFAULT_MAX_IN_FLIGHT

    print(
        "link: loopback (no added latency); sender: the hook's defaults "
        f"(chunks of {DEFAULT_CHUNK_SIZE:,}, {DEFAULT_MAX_IN_FLIGHT} in flight)"
    )
    check_generator()
    plan = [("parquet", n) for n in parse_sizes(args.sizes)] + [
        ("sql", n) for n in parse_sizes(args.sql_sizes)
    ]
    results = run_all(plan, args.data_dir, args.repeat)
    report(results, args.repeat)


def run_all(
    plan: list[tuple[str, int]], data_dir: Path | None, repeat: int
) -> dict[tuple[str, int], dict | None]:
    """Every size ``repeat`` times, interleaved (rounds over the plan); each size's median run by time."""
    from airflow_provider_carol.sandbox.control import Sandbox
    from airflow_provider_carol.sandbox.pytest_plugin import start_sandbox, stop_sandbox

    work = Path(tempfile.mkdtemp(prefix="carol-bench-scaling-"))
    (data_dir or work).mkdir(parents=True, exist_ok=True)
    process, info = start_sandbox(work, tls=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(AIRFLOW_HOME=str(work / "airflow"), PYTHONPATH=str(ROOT))
    ctx = {
        "sandbox": Sandbox(info),
        "process": process,
        "info": info,
        "env": env,
        "data_dir": data_dir or work,
    }
    runs: dict[tuple[str, int], list[dict | None]] = {item: [] for item in plan}
    try:
        for _ in range(repeat):
            for kind, rows in plan:
                runs[(kind, rows)].append(run_size(kind, rows, ctx))
    finally:
        ctx["sandbox"].session.close()
        stop_sandbox(process)
        shutil.rmtree(work, ignore_errors=True)
    return {item: median_run(found) for item, found in runs.items()}


def median_run(found: list[dict | None]) -> dict | None:
    """The median run by wall time; None when the size was skipped."""
    done = sorted((run for run in found if run is not None), key=lambda run: run["seconds"])
    return done[len(done) // 2] if done else None


def report(results: dict[tuple[str, int], dict | None], repeat: int) -> None:
    print(f"\nmedian of {repeat} interleaved runs per size")
    print(f"cores: {os.cpu_count()}, load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("CPU us/row: CPU seconds per row of the sender and of the sandbox, which the box's load does not")
    print("inflate the way it inflates wall time (it still costs some: caches, context switches).")
    print(
        f"{'source':<8} {'rows':>11} {'time s':>8} {'records/s':>10} {'peak RSS MB':>12} "
        f"{'RSS before MB':>14} {'sandbox RSS MB':>15} {'CPU us/row':>11} {'sandbox CPU':>12} {'load':>5}"
    )
    for (kind, rows), result in results.items():
        if result is None:
            print(f"{kind:<8} {rows:>11,} skipped: the sandbox cannot hold it on this machine")
            continue
        print(
            f"{kind:<8} {rows:>11,} {result['seconds']:>8.1f} {result['records_per_s']:>10,.0f} "
            f"{result['peak_rss_mb']:>12.0f} {result['rss_before_send_mb']:>14.0f} "
            f"{result['sandbox']['VmRSS']:>15.0f} {result['cpu_seconds'] / rows * 1e6:>11.1f} "
            f"{result['sandbox_cpu_seconds'] / rows * 1e6:>12.1f} {result['load_before']:>5.1f}"
        )
    for kind in ("parquet", "sql"):
        big, small = results.get((kind, 10_000_000)), results.get((kind, 1_000_000))
        if big and small:
            print(
                f"{kind}: peak RSS 10M/1M = {big['peak_rss_mb'] / small['peak_rss_mb']:.2f}, "
                f"time 10M/1M = {big['seconds'] / small['seconds']:.1f}, sender CPU 10M/1M = "
                f"{big['cpu_seconds'] / small['cpu_seconds']:.1f} (linear: 10.0)"
            )
    print(
        "Every size verified through the sandbox admin API: row count, one complete batch, "
        "summary totals match."
    )


if __name__ == "__main__":
    main()
