"""Checks that can refuse a run, made before the target changes: a run refused here leaves nothing behind."""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

from ray_replicator.catalog import Table
from ray_replicator.config import Settings
from ray_replicator.engines import open_source
from ray_replicator.engines.base import UsageError


def check_spill_dir(settings: Settings) -> None:
    """A spill directory that cannot take files is a config error, found before anything is copied."""
    if settings.spill_dir is None:
        return
    path = settings.spill_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".ray-replicator-probe-{os.getpid()}"
        probe.write_bytes(b"x")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"spill_dir {path} is not a writable directory ({exc.strerror}); fix it or unset spill_dir"
        ) from None


def check_report_path(path: Path | None) -> None:
    """The report is written when the run ends: a path that cannot take it is found before the target changes.

    Probes the JSON and the .md file next to it without touching an existing file's content; directories and
    files the probe had to create are removed again."""
    if path is None:
        return
    created: list[Path] = []
    try:
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        for file in (path, path.with_suffix(".md")):
            existed = file.exists()
            with file.open("a"):
                pass
            if not existed:
                created.append(file)
    except OSError as exc:
        raise UsageError(
            f"cannot write the report to {path} ({exc.strerror or exc}); pass --report FILE.json"
        ) from None
    finally:
        for made in reversed(created):
            with contextlib.suppress(OSError):
                if made.is_dir():
                    made.rmdir()
                else:
                    made.unlink()


def check_target_shape(target_url: str, tables: list[Table], source_engine: str, target_engine: str) -> None:
    """With existing = truncate the target's own tables are kept: refuse, before truncating anything, tables whose
    columns do not take the source's rows (missing columns, extra NOT NULL columns without default, and between
    engines of one kind any type that differs: both binary COPY paths send the source's own types)."""
    wanted_names = {(t.schema, t.name) for t in tables}
    reader = open_source(target_url)
    try:
        # Only the tables this run writes: any other target table (its types, its permissions) is none of ours.
        present = [n for n in reader.table_names()[1] if n in wanted_names]
        patterns = [glob.escape(f"{schema}.{name}") for schema, name in present]
        found = reader.catalog(patterns, []).tables if patterns else []
        have = {(t.schema, t.name): t for t in found if (t.schema, t.name) in wanted_names}
    finally:
        reader.close()
    for table in tables:
        existing = have.get((table.schema, table.name))
        if existing is None:
            continue
        wanted = [c.name for c in table.copy_columns]
        got = {c.name: c for c in existing.columns}
        missing = [n for n in wanted if n not in got]
        extra = [
            c.name
            for c in existing.columns
            if c.name not in wanted and not c.nullable and c.default is None and c.identity is None and not c.computed
        ]
        if missing or extra:
            what = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra NOT NULL {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise UsageError(
                f"target table {table.qualified} exists with other columns ({what}); "
                "use existing = drop or make its columns match the source"
            )
        if source_engine == target_engine:
            for name in wanted:
                src_type, dst_type = table.column(name).native_type, got[name].native_type
                if src_type != dst_type:
                    raise UsageError(
                        f"target column {table.qualified}.{name} is {dst_type}, the source's is {src_type}: values "
                        "may not fit and binary COPY needs equal types; use existing = drop or alter the column"
                    )
