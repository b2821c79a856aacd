"""SQL Server → PostgreSQL, side by side in one invocation: one stand-in source, one embedded PostgreSQL.

A SQL Server stand-in (own process, 127.0.0.1) holds a generated StackOverflow2010; then, one after another:
  drain     the fastest a client reads every table and discards it, 2 tables at a time in 2 processes
            (mssql-python Arrow batches, and pymssql tuples): the ceiling for any SQL Server reader here;
  pipeline ceiling  the fastest drain and a server-side PostgreSQL COPY FROM files of the same rows at the same
            time, 2 at a time each: what a copy with zero cost of its own would take (benchmarks/pipeline_ceiling.py);
  ours      ray-replicator with reader=pymssql and reader=mssql-python (keys, identity, verify counts), as
            `ray-replicator run` processes, each both ways (benchmarks/ours_cli.py): cold (it starts and stops
            its own Ray) and warm (`--address` of a Ray head already up, as on a cluster);
  current, pgloader  the user's current method and pgloader (benchmarks/mssql_peers.py).
What each did to the data is measured afterwards, value by value, against ray-replicator's copy (itself
checked against the source by checksums). Every method is sampled for CPU-seconds and RSS per process
(benchmarks/procstats.py: the stand-in, PostgreSQL, the clients, our driver, Ray workers and Ray's own processes).
`pipeline_ceiling_over_ours` is the pipeline ceiling's seconds over ours warm (the faster reader): neither pays a
start-up; `…_cold` over ours cold. Prints markdown tables, writes them and a PNG bar chart to benchmarks/results/,
and prints as its last line one JSON object.

    python benchmarks/mssql_to_pg.py --scale 0.1 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.args import scale_parser  # noqa: E402
from benchmarks.charts import seconds_chart  # noqa: E402
from benchmarks.mssql_drain import drain_pool, drain_with  # noqa: E402
from benchmarks.mssql_peers import measure_damage, run_current_sampled, run_pgloader  # noqa: E402
from benchmarks.ours_cli import OursRun, WarmRay, run_cli, warm_ray  # noqa: E402
from benchmarks.pg_to_pg import drop_database, median, quiesce  # noqa: E402
from benchmarks.pipeline_ceiling import export_copy_files, run_pipeline_ceiling  # noqa: E402
from benchmarks.procstats import ProcessSampler, Usage, cpu_table, postmaster_pid  # noqa: E402
from benchmarks.standin_so import StandIn, standin  # noqa: E402
from ray_replicator.config import Settings  # noqa: E402
from ray_replicator.embedded import recreate_database, start_embedded_postgres  # noqa: E402
from ray_replicator.synth import stackoverflow as so  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
READERS = ("mssql-python", "pymssql")
MODES = ("cold", "warm")


def largest_first(scale: float) -> list[str]:
    """Tables by rough bytes, biggest first, so two workers finish together."""
    weight = {"Posts": 12.0, "Comments": 2.0, "Users": 2.0}
    counts = so.row_counts(scale)
    return sorted(counts, key=lambda t: -counts[t] * weight.get(t, 1.0))


def run_drain(src: StandIn, tables: list[str], client: str, expected: int, servers: dict[str, list[int]]
              ) -> tuple[float, Usage]:  # fmt: skip
    """Every table drained 2 at a time by one client, sampled beside the servers."""
    with drain_pool(client) as (pool, pids), ProcessSampler({**servers, "drain clients": pids}) as sampler:
        rows = drain_with(pool, src, tables, client)
    if rows != expected:
        raise SystemExit(f"drain with {client} read {rows} rows, expected {expected}")
    return sampler.usage.seconds, sampler.usage


def run_ours(src: StandIn, target_url: str, reader: str | None, expected: int, warm: WarmRay | None,
             servers: dict[str, list[int]], verify: str = "counts") -> OursRun:  # fmt: skip
    """`ray-replicator run` from the stand-in with `reader` (None: the default), cold or warm, sampled beside the
    servers."""
    url = src.url(reader=reader) if reader else src.url()
    run = run_cli(url, target_url, verify=verify, warm=warm, other_roots=servers)
    if run.rows != expected:
        raise SystemExit(f"ray-replicator reader={reader} copied {run.rows} rows, expected {expected}")
    return run


def warm_up(src: StandIn, base_url: str) -> None:
    """One small cold run first (not timed), so the first timed run does not pay for a cold page cache."""
    url = recreate_database(base_url, "bench_warmup")
    run_cli(src.url(), url, extra_args=("--tables", "dbo.LinkTypes"))
    drop_database(base_url, url)


def checksum_against_source(src: StandIn, target_url: str) -> str:
    """ray-replicator's own range checksums of a finished copy against the source (not timed)."""
    from ray_replicator.pipeline import verify_only

    settings = Settings.model_validate(
        {"source": {"url": src.url()}, "target": {"url": target_url}, "verify": "checksums", "report_path": None}
    )
    bad = [f"{t}: {s} vs {d} rows {m}" for t, s, d, m in verify_only(settings) if s != d or m]
    return "exact: checksums of every range = source" if not bad else "MISMATCH: " + "; ".join(bad)


# ---------------------------------------------------------------------------------------------------- main


class Measured:
    """Every method's runs, the usage of its last run, and the bytes ours moved (from its report)."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = {}
        self.usage: dict[str, Usage] = {}
        self.bytes: dict[str, int] = {}

    def add(self, label: str, seconds: float, usage: Usage) -> None:
        self.runs.setdefault(label, []).append(seconds)
        self.usage[label] = usage

    def median(self, label: str) -> float:
        return median(self.runs[label])


def _rounds(args: argparse.Namespace, src: StandIn, head: WarmRay, base_url: str, servers: dict[str, list[int]],
            m: Measured) -> dict[str, str]:  # fmt: skip
    """Drains and ours, interleaved rounds (a noisy spell on the box hits every method alike); returns the URL of
    the last cold copy per reader, kept for the checks."""
    rows = sum(so.row_counts(args.scale).values())
    tables = largest_first(args.scale)
    kept: dict[str, str] = {}
    for run in range(args.repeat):
        for client in READERS:
            quiesce(base_url)
            m.add(f"drain {client}", *run_drain(src, tables, client, rows, servers))
        for reader in READERS:
            for mode in MODES:
                url = recreate_database(base_url, f"bench_ours_{reader.replace('-', '_')}_{mode}_{run}")
                quiesce(base_url)
                ours = run_ours(src, url, reader, rows, head if mode == "warm" else None, servers)
                m.add(f"ours {reader} {mode}", ours.seconds, ours.usage)
                m.bytes[f"ours {reader} {mode}"] = int(ours.report.get("total_bytes", 0))
                if mode == "cold":
                    if reader in kept:
                        drop_database(base_url, kept[reader])
                    kept[reader] = url
                else:
                    drop_database(base_url, url)
    return kept


def measure(args: argparse.Namespace, scratch: Path, base_url: str, m: Measured) -> dict[str, object]:
    rows = sum(so.row_counts(args.scale).values())
    with standin(args.scale, args.seed) as src, warm_ray() as head:
        postmaster = postmaster_pid(base_url)
        servers = {"stand-in": [src.pid], "postgres": [postmaster]}
        warm_up(src, base_url)
        urls = _rounds(args, src, head, base_url, servers, m)
        drain_client = min(READERS, key=lambda c: m.median(f"drain {c}"))
        ref_url = urls["mssql-python"]
        files = export_copy_files(ref_url, "dbo", largest_first(args.scale), scratch / "copyfiles")
        for _ in range(args.repeat):
            quiesce(base_url)
            m.add("pipeline ceiling", *run_pipeline_ceiling(src, drain_client, ref_url, "dbo", files, postmaster, rows))
        shutil.rmtree(scratch / "copyfiles", ignore_errors=True)
        quiesce(base_url)
        m.add("current method", *run_current_sampled(src, ref_url, "current", servers))
        quiesce(base_url)
        pgl = run_pgloader(src, ref_url, "pgloader", scratch, servers)
        if pgl.seconds is not None and pgl.usage is not None:
            m.add("pgloader", pgl.seconds, pgl.usage)
        exact = {reader: checksum_against_source(src, url) for reader, url in urls.items()}
    current_dmg = measure_damage(ref_url, "dbo", "current", lower=False)
    pgl_dmg = measure_damage(ref_url, "dbo", "pgloader", lower=True) if pgl.seconds is not None else None
    return {
        "drain_client": drain_client,
        "exact": exact,
        "current": current_dmg.describe(),
        "pgloader": pgl_dmg.describe() if pgl_dmg is not None else f"failed: {pgl.error}",
        "pgloader_error": pgl.error,
        "pgloader_tail": pgl.log_tail if pgl.seconds is None else [],
    }


def _entries(m: Measured, found: dict[str, object]) -> list[tuple[str, str, str, str]]:
    """(label, key in m, what it did to the data, colour) per row of the table, in order."""
    drain_client = str(found["drain_client"])
    exact: dict[str, str] = found["exact"]  # type: ignore[assignment]
    entries = [
        ("pipeline ceiling: fastest drain + server-side COPY FROM files, at once, 2 at a time each",
         "pipeline ceiling", "—", "#4d4d4d"),
        (f"drain ceiling: {drain_client} reads every table, 2 at a time", f"drain {drain_client}", "—", "#7f7f7f"),
    ]  # fmt: skip
    entries += [(f"drain with {c}, 2 at a time", f"drain {c}", "—", "#b0b0b0") for c in READERS if c != drain_client]
    for reader in READERS:
        entries.append((f"ray-replicator run, reader={reader}, warm: Ray up (keys, identity, verify counts)",
                        f"ours {reader} warm", exact[reader], "#2ca02c"))  # fmt: skip
        entries.append((f"ray-replicator run, reader={reader}, cold: Ray start and shutdown included",
                        f"ours {reader} cold", exact[reader], "#98df8a"))  # fmt: skip
    entries.append(("user's current method: pymssql → csv → 128 MB spool → COPY, sequential", "current method",
                    str(found["current"]), "#d62728"))  # fmt: skip
    entries.append(("pgloader 3.6 (FreeTDS UTF-8, --dynamic-space-size 4096)", "pgloader", str(found["pgloader"]),
                    "#ff7f0e"))  # fmt: skip
    return entries


def main() -> None:
    parser = scale_parser(__doc__, 0.1)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the drains, ours and the ceiling; medians are reported"
    )
    args = parser.parse_args()

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    load_start = os.getloadavg()
    scratch = Path(tempfile.mkdtemp(prefix="bench-mssql2pg-"))
    os.chmod(scratch, 0o755)
    pg_server, base_url = start_embedded_postgres(scratch / "pgdata")
    rows = sum(so.row_counts(args.scale).values())
    m = Measured()
    try:
        found = measure(args, scratch, base_url, m)
        load_end = os.getloadavg()
    finally:
        pg_server.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)

    entries = _entries(m, found)
    drain_s = m.median(f"drain {found['drain_client']}")
    ceiling_s = m.median("pipeline ceiling")
    title = f"SQL Server stand-in → PostgreSQL, StackOverflow2010 scale {args.scale}, {rows:,} rows"
    lines = [
        f"{title}; drains, ray-replicator and the pipeline ceiling: median of {args.repeat} interleaved rounds, the "
        f"others one run; autovacuum idle before each; load average {load_start[0]:.2f} before / {load_end[0]:.2f} "
        "after",
        "",
        "| method | seconds | rows/s | drain/method | pipeline ceiling/method | what it did to the data |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for label, key, data, _ in entries:
        if key not in m.runs:
            lines.append(f"| {label} | failed | | | | {data} |")
            continue
        took = m.median(key)
        lines.append(
            f"| {label} | {took:.2f} | {rows / took:,.0f} | {drain_s / took:.2f} | {ceiling_s / took:.2f} | {data} |"
        )
    lines += ["", "CPU-seconds and peak RSS per process role (last run of each method):", ""]
    lines += cpu_table({label: m.usage[key] for label, key, _, _ in entries if key in m.usage})
    markdown = "\n".join(lines)
    print(markdown)
    if found["pgloader_tail"]:
        print("\npgloader output (tail):\n    " + "\n    ".join(found["pgloader_tail"]))  # type: ignore[arg-type]

    RESULTS.mkdir(exist_ok=True)
    stem = f"mssql_to_pg_scale{args.scale:g}"
    (RESULTS / f"{stem}.md").write_text(markdown + "\n")
    shown = [(label, m.median(key), color) for label, key, _, color in entries if key in m.runs]
    png = RESULTS / f"{stem}.png"
    seconds_chart(png, [e[0] for e in shown], [e[1] for e in shown], [e[2] for e in shown],
                  f"{title}, load average {load_end[0]:.1f}", row_height=0.55)  # fmt: skip
    print(f"\nchart: {png}\nmarkdown: {RESULTS / f'{stem}.md'}")
    print(json.dumps(_summary(args, m, found, rows, load_start, load_end)))


def _summary(args: argparse.Namespace, m: Measured, found: dict[str, object], rows: int,
             load_start: tuple[float, ...], load_end: tuple[float, ...]) -> dict[str, object]:  # fmt: skip
    ours = {mode: {r: m.median(f"ours {r} {mode}") for r in READERS} for mode in MODES}
    reader = min(READERS, key=lambda r: ours["warm"][r])
    ours_s, ours_cold_s = ours["warm"][reader], ours["cold"][reader]
    drain_s = m.median(f"drain {found['drain_client']}")
    ceiling_s = m.median("pipeline ceiling")
    current_s = m.median("current method")
    pgl_s = m.median("pgloader") if "pgloader" in m.runs else None
    workers = m.usage[f"ours {reader} warm"].cpu_s.get("ray workers", 0.0)
    return {
        "ours_s": round(ours_s, 3),
        "ours_cold_s": round(ours_cold_s, 3),
        "ours_reader": reader,
        **{f"ours_{r.replace('-', '_')}_{mode}_s": round(ours[mode][r], 3) for mode in MODES for r in READERS},
        "pipeline_ceiling_s": round(ceiling_s, 3),
        "pipeline_ceiling_over_ours": round(ceiling_s / ours_s, 3),
        "pipeline_ceiling_over_ours_cold": round(ceiling_s / ours_cold_s, 3),
        "drain_ceiling_s": round(drain_s, 3),
        "drain_client": found["drain_client"],
        "drain_over_ours": round(drain_s / ours_s, 3),
        "pgloader_s": None if pgl_s is None else round(pgl_s, 3),
        "pgloader_error": found["pgloader_error"],
        "current_method_s": round(current_s, 3),
        "ours_over_pgloader_speedup": None if pgl_s is None else round(pgl_s / ours_s, 3),
        "ours_over_current_speedup": round(current_s / ours_s, 3),
        "worker_cpu_s_per_m_rows": round(workers / (rows / 1e6), 3),
        "worker_cpu_s_per_gb": round(workers / (moved / 1e9), 3) if (moved := m.bytes[f"ours {reader} warm"]) else None,
        "peak_rss_mb": round(max(m.usage[f"ours {r} {mode}"].peak_ours_mb for r in READERS for mode in MODES), 1),
        "current_method_damage": found["current"],
        "pgloader_damage": found["pgloader"],
        "ours_exact": found["exact"],
        "rows": rows,
        "scale": args.scale,
        "seed": args.seed,
        "repeat": args.repeat,
        "runs_s": {label: [round(x, 3) for x in runs] for label, runs in m.runs.items()},
        "usage": {label: u.to_json() for label, u in m.usage.items()},
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in load_end],
    }


if __name__ == "__main__":
    main()
