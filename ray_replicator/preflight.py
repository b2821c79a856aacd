"""Checks that can refuse a run, made before the target changes: a run refused here leaves nothing behind.

POLICY_RULES: a source policy that would hand the target a value class it cannot hold (Capabilities.carries, or
its writer's) is refused at plan time, before any catalog detail is read, so `plan` refuses it as `run` does.
"""

from __future__ import annotations

import contextlib
import glob
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from ray_replicator.catalog import Table
from ray_replicator.config import Settings
from ray_replicator.engines import capabilities, engine_of, open_source
from ray_replicator.engines.base import Capabilities, UsageError


@dataclass(frozen=True)
class PolicyRule:
    """A policy value that hands the target a value class (a Carries field) the target must hold exactly."""

    option: str
    """A source URL option (one of the source engine's read_policies) or a Settings field."""
    value: str
    needs: str
    """The Carries field the value relies on."""
    gives: str
    """What the value hands the target, in a few words."""
    instead: str
    """The values to set instead, as the user writes them."""


POLICY_RULES: tuple[PolicyRule, ...] = (
    PolicyRule(
        "hundred_ns",
        "keep",
        "hundred_ns",
        "keeps 100 ns digits",
        "hundred_ns=round (rounds to microseconds) or hundred_ns=refuse",
    ),
    PolicyRule(
        "nul",
        "keep",
        "nul_in_text",
        "keeps U+0000 in text",
        "nul=strip, nul=replace (U+FFFD) or nul=refuse",
    ),
    PolicyRule(
        "sql_variant",
        "keep",
        "sql_variant",
        "keeps each sql_variant value with its base type",
        "sql_variant=text (each value's exact text) or sql_variant=refuse",
    ),
)
"""Each rule is checked against the target's Carries; add a row for a new policy value that needs one."""


def _url_options(url: str) -> dict[str, str]:
    try:
        return {k.lower(): v.lower() for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    except ValueError:
        return {}  # the engine reports the malformed URL


def _policy_value(settings: Settings, source: Capabilities, option: str) -> str | None:
    if option in source.read_policies:
        return _url_options(settings.source.display()).get(option)
    value = getattr(settings, option, None)
    return value if isinstance(value, str) else None


def check_policies(settings: Settings) -> None:
    """Refuse, before anything is read or written, a policy that hands the target a value class it (or the writer
    its URL picks) cannot hold: one line naming the option, the target and what to set instead (exit 2)."""
    if settings.target is None:
        return
    source = capabilities(engine_of(settings.source.display()))
    target = capabilities(engine_of(settings.target.display()))
    carried, writer = target.carries_for(_url_options(settings.target.display()))
    for rule in POLICY_RULES:
        if _policy_value(settings, source, rule.option) != rule.value or getattr(carried, rule.needs):
            continue
        where = "source URL option" if rule.option in source.read_policies else "setting"
        if writer and getattr(target.carries, rule.needs):
            able = [w for w, c in target.writers if getattr(c, rule.needs)]
            shown = " or ".join(f"{target.writer_option}={w}" for w in able)
            raise UsageError(
                f"{where} {rule.option}={rule.value} {rule.gives}, which the "
                f"{target.title} target's {target.writer_option}={writer} cannot carry; set {shown} on the target "
                f"URL, or {rule.instead}"
            )
        raise UsageError(
            f"{where} {rule.option}={rule.value} {rule.gives}, which a {target.title} target cannot hold; "
            f"set {rule.instead}"
        )


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
