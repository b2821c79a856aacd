"""SQL Server (the stand-in) → PostgreSQL keeps the schema as far as PostgreSQL can, and lists every difference:
computed columns as generated columns or plain columns with the source's values, defaults translated or not
kept, case-insensitive collations kept (collation = ci) or not (binary), names over 63 bytes mapped by one rule,
and types spelled otherwise. Checked through replicate() and a real PostgreSQL client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ray_replicator import replicate
from ray_replicator.catalog import Catalog, Column, LogicalType, Table
from ray_replicator.config import Settings
from ray_replicator.engines import open_source, open_target
from ray_replicator.engines.base import KeyRange, UsageError, WriteOptions
from ray_replicator.engines.postgres import pg_name
from ray_replicator.pipeline import verify_only
from ray_replicator.record import SchemaChange
from tests.engines.mssql.servers import Server, small_run_settings, standin
from tests.helpers import assert_one_line_error, cli
from tests.pgserver import PasswordPostgres

ICU_BIN = Path("/usr/lib/postgresql/15/bin")

LONG_TABLE = "Table_" + "t" * 64  # 70 bytes
LONG_COLUMN = "Column_" + "c" * 63  # 70 bytes
LONG_INDEX = "IX_" + "i" * 67  # 70 bytes
TWIN_A = "Twin_" + "x" * 58 + "_A"  # 65 bytes: the same first 63 bytes as TWIN_B
TWIN_B = "Twin_" + "x" * 58 + "_B"

_SOURCE_DDL = (
    """CREATE TABLE dbo.people (
        id int NOT NULL PRIMARY KEY,
        a int, b int,
        nm nvarchar(50),
        code nvarchar(20) NOT NULL,
        flag tinyint,
        price smallmoney,
        at datetimeoffset(7),
        sum_ab AS ([a]+[b]),
        a_or_zero AS (isnull([a],(0))),
        nm_upper AS (upper([nm])),
        a_text AS (CONVERT([nvarchar](20),[a])),
        nm_len AS (len([nm])),
        nm_plus AS ([nm]+N'!'),
        created datetime2 DEFAULT (getdate()),
        created_utc datetime2 DEFAULT (sysutcdatetime()),
        stamp datetime DEFAULT (CURRENT_TIMESTAMP),
        utc2 datetime DEFAULT (getutcdate()),
        sys2 datetime2 DEFAULT (sysdatetime()),
        zero int DEFAULT ((0)),
        empty nvarchar(10) DEFAULT (''),
        letter nvarchar(10) DEFAULT (N'x'),
        ratio decimal(5,2) DEFAULT ((1.5)),
        active bit DEFAULT ((1)),
        g uniqueidentifier DEFAULT (newid()),
        gs uniqueidentifier DEFAULT (newsequentialid()),
        later datetime2 DEFAULT (dateadd(day,(1),getdate())),
        CONSTRAINT uq_people_code UNIQUE (code))""",
    "INSERT INTO dbo.people (id, a, b, nm, code, flag, price, at) VALUES "
    "(1, 2, 3, N'Ann', N'alpha', 255, 1.25, '2020-01-02 03:04:05.123456 +02:00'), "
    "(2, NULL, 5, NULL, N'Beta', 0, NULL, NULL)",
    f"""CREATE TABLE dbo.{LONG_TABLE} (id int NOT NULL PRIMARY KEY, {LONG_COLUMN} int, {TWIN_A} int, {TWIN_B} int,
        seen_at datetimeoffset(3))""",
    f"CREATE INDEX {LONG_INDEX} ON dbo.{LONG_TABLE} ({LONG_COLUMN})",
    f"INSERT INTO dbo.{LONG_TABLE} VALUES (1, 10, 11, 12, '2020-01-02 03:04:05.123 +02:00'), (2, 20, 21, 22, NULL)",
    """CREATE TABLE dbo.more_defaults (id int NOT NULL PRIMARY KEY, seq_n int DEFAULT (NEXT VALUE FOR dbo.s),
        who nvarchar(128) DEFAULT (suser_sname()), host nvarchar(128) DEFAULT (host_name()))""",
)


@pytest.fixture(scope="module")
def source() -> Iterator[Server]:
    with standin() as server:
        server.run(*_SOURCE_DDL)
        yield server


def _run(source: Server, target: str, **extra: Any) -> None:
    report = replicate(small_run_settings(source.url(), target, **extra))
    assert report.status == "ok", report.errors


def _changes(source: Server, target: str, collation: str = "binary") -> list[SchemaChange]:
    src = open_source(source.url())
    dst = open_target(target)
    try:
        catalog = src.catalog([], [])
        return dst.schema_changes(catalog, "mssql", WriteOptions(collation=collation))  # type: ignore[arg-type]
    finally:
        src.close()
        dst.close()


def _by(changes: list[SchemaChange], kind: str) -> dict[str | None, SchemaChange]:
    return {c.column if c.column is not None else c.source: c for c in changes if c.kind == kind}


def _rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return list(conn.execute(sql, params).fetchall())


def _execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def icu_postgres() -> Iterator[PasswordPostgres]:
    """The embedded PostgreSQL is built without ICU; the system's PostgreSQL has it."""
    if not ICU_BIN.is_dir():
        pytest.skip(f"no PostgreSQL built with ICU at {ICU_BIN}")
    server = PasswordPostgres(ICU_BIN)
    try:
        yield server
    finally:
        server.close()


def test_computed_columns_generated_or_plain(
    source: Server, make_database: Callable[[str], str], ray_local: None
) -> None:
    target = make_database("schema")
    changes = _changes(source, target)
    generated, plain = _by(changes, "computed_generated"), _by(changes, "computed_plain")
    assert set(generated) == {"sum_ab", "a_or_zero", "nm_upper", "a_text"}
    assert set(plain) == {"nm_len", "nm_plus"}
    assert "LENGTH" in plain["nm_len"].reason or "means something else" in plain["nm_len"].reason
    assert "refuses" in plain["nm_plus"].reason  # text + text: PostgreSQL has no such operator
    _run(source, target)
    exprs = dict(
        _rows(
            target,
            "SELECT attname::text, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_attrdef d "
            "ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE a.attrelid = 'dbo.people'::regclass "
            "AND a.attgenerated = 's'",
        )
    )
    assert set(exprs) == {"sum_ab", "a_or_zero", "nm_upper", "a_text"}
    assert exprs["sum_ab"] == "(a + b)"
    rows = _rows(target, "SELECT id, sum_ab, a_or_zero, nm_upper, a_text, nm_len, nm_plus FROM dbo.people ORDER BY id")
    assert rows == [(1, 5, 2, "ANN", "2", 3, "Ann!"), (2, None, 0, None, None, None, None)]
    assert source.rows("SELECT nm_len, nm_plus FROM dbo.people ORDER BY id") == [(3, "Ann!"), (None, None)]
    # verify compares what PostgreSQL computed with the source's values: a generated value that differs is found
    _execute(target, "ALTER TABLE dbo.people ALTER COLUMN sum_ab DROP EXPRESSION")
    _execute(target, "UPDATE dbo.people SET sum_ab = 99 WHERE id = 1")
    settings = Settings.model_validate(
        small_run_settings(source.url(), target, verify="checksums", tables=["dbo.people"])
    )
    ((name, _, _, mismatched),) = verify_only(settings)
    assert name == "dbo.people" and "id=1" in str(mismatched).lower(), mismatched


def test_defaults_recreated_or_listed(source: Server, make_database: Callable[[str], str], ray_local: None) -> None:
    target = make_database("schema")
    changes = _changes(source, target)
    translated, not_kept = _by(changes, "default_translated"), _by(changes, "default_not_kept")
    assert set(translated) == {
        "created", "created_utc", "stamp", "utc2", "sys2", "zero", "empty", "letter", "ratio", "active", "g", "gs",
        "later", "who",
    }  # fmt: skip
    assert set(not_kept) == {"seq_n", "host"}
    assert "sequence" in not_kept["seq_n"].reason and "refuses" in not_kept["host"].reason
    assert translated["who"].target == "CURRENT_USER" and "sqlglot" in translated["who"].reason
    assert translated["g"].target == "gen_random_uuid()" and translated["gs"].reason
    _run(source, target)
    _execute(target, "INSERT INTO dbo.people (id, code) VALUES (9, 'new')")
    (row,) = _rows(
        target,
        "SELECT zero, empty, letter, ratio, active, g IS NOT NULL, gs <> g, "
        "abs(extract(epoch FROM created - LOCALTIMESTAMP)) < 60, "
        "abs(extract(epoch FROM created_utc - (now() AT TIME ZONE 'UTC'))) < 60, "
        "abs(extract(epoch FROM later - LOCALTIMESTAMP - interval '1 day')) < 60, "
        "stamp IS NOT NULL AND utc2 IS NOT NULL AND sys2 IS NOT NULL FROM dbo.people WHERE id = 9",
    )
    assert row == (0, "", "x", pytest.approx(1.5), True, True, True, True, True, True, True)
    _execute(target, "INSERT INTO dbo.more_defaults (id) VALUES (1)")
    assert _rows(target, "SELECT seq_n, who = current_user, host FROM dbo.more_defaults") == [(None, True, None)]


def test_types_and_binary_collation_listed(source: Server, make_database: Callable[[str], str]) -> None:
    changes = _changes(source, make_database("schema"))
    widened, changed = _by(changes, "type_widened"), _by(changes, "type_changed")
    assert widened["flag"].source == "tinyint" and widened["flag"].target == "smallint"
    assert widened["price"].target == "numeric(19,4)"
    assert widened["nm"].target == "character varying(50)"
    assert "offset" in changed["at"].reason and changed["at"].target.startswith("timestamp(6) with time zone")
    not_kept = _by(changes, "collation_not_kept")
    assert {"nm", "code", "empty", "letter"} <= set(not_kept)
    assert not_kept["code"].source == "SQL_Latin1_General_CP1_CI_AS" and "collation = binary" in not_kept["code"].reason
    assert len([c for c in changes if c.kind == "collation_not_kept" and c.column == "code"]) == 1


def test_binary_collation_lets_case_variants_in(
    source: Server, make_database: Callable[[str], str], ray_local: None
) -> None:
    target = make_database("schema")
    _run(source, target)
    _execute(target, "INSERT INTO dbo.people (id, code) VALUES (10, 'ALPHA')")
    assert _rows(target, "SELECT count(*) FROM dbo.people WHERE code IN ('alpha', 'ALPHA')") == [(2,)]


def test_ci_collation_refused_without_icu(source: Server, make_database: Callable[[str], str], ray_local: None) -> None:
    target = make_database("schema")
    with pytest.raises(UsageError, match=r"^dbo\.more_defaults\.who: collation = ci needs a PostgreSQL built with ICU"):
        _changes(source, target, "ci")
    with pytest.raises(UsageError, match="needs a PostgreSQL built with ICU"):
        replicate(small_run_settings(source.url(), target, collation="ci"))
    done = cli("run", "--source", source.url(), "--target", target, env={"RAY_REPLICATOR_COLLATION": "ci"})
    assert_one_line_error(done, 2, "dbo.more_defaults.who: collation = ci needs a PostgreSQL built with ICU")
    assert _rows(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'dbo'") == [(0,)]


def test_ci_collation_keeps_a_case_insensitive_unique_key(
    source: Server, icu_postgres: PasswordPostgres, ray_local: None
) -> None:
    icu_postgres.sql("DROP DATABASE IF EXISTS ci", "CREATE DATABASE ci")
    target = icu_postgres.url("ci")
    kept = _by(_changes(source, target, "ci"), "collation_kept")
    assert kept["code"].target.startswith("dbo.ci_as (ICU und-u-ks-level2")
    _run(source, target, collation="ci", verify="checksums")
    assert _rows(
        target,
        "SELECT c.collname::text, c.collprovider::text, c.collisdeterministic FROM pg_attribute a "
        "JOIN pg_collation c ON c.oid = a.attcollation WHERE a.attrelid = 'dbo.people'::regclass "
        "AND a.attname = 'code'",
    ) == [("ci_as", "i", False)]
    with pytest.raises(psycopg.errors.UniqueViolation):
        _execute(target, "INSERT INTO dbo.people (id, code) VALUES (11, 'ALPHA')")
    assert _rows(target, "SELECT id FROM dbo.people WHERE code = 'BETA'") == [(2,)]


def test_in_database_digest_tells_case_apart_under_ci(icu_postgres: PasswordPostgres) -> None:
    """PostgreSQL → PostgreSQL verify hashes values in the server: a case-insensitive collation must not make 'a'
    and 'A' hash alike."""
    digests = []
    for name, value in (("ci_a", "a"), ("ci_b", "A")):
        icu_postgres.sql(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
        icu_postgres.sql(
            "CREATE COLLATION ci_as (provider = icu, locale = 'und-u-ks-level2', deterministic = false)",
            "CREATE TABLE t (id int PRIMARY KEY, c text COLLATE ci_as)",
            f"INSERT INTO t VALUES (1, '{value}')",
            database=name,
        )
        source = open_source(icu_postgres.url(name))
        try:
            table = source.catalog([], []).tables[0]
            digests.append(source.range_digest(table, KeyRange("public", "t", 0, "full"), ["id", "c"]))
        finally:
            source.close()
    assert digests[0] != digests[1]


def test_long_names_mapped_everywhere(source: Server, make_database: Callable[[str], str], ray_local: None) -> None:
    target = make_database("schema")
    mapped = _by(_changes(source, target), "name_mapped")
    assert set(mapped) == {LONG_TABLE, LONG_COLUMN, TWIN_A, TWIN_B, LONG_INDEX}
    for name, change in mapped.items():
        assert change.target == pg_name(name) and len(change.target.encode()) == 63
        assert change.target.startswith(name[:54]) and change.target[54] == "_"
    assert pg_name(TWIN_A) != pg_name(TWIN_B)
    _run(source, target, verify="checksums")
    table = pg_name(LONG_TABLE)
    columns = _rows(
        target,
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'dbo' AND table_name = %s "
        "ORDER BY ordinal_position",
        (table,),
    )
    assert columns == [("id",), (pg_name(LONG_COLUMN),), (pg_name(TWIN_A),), (pg_name(TWIN_B),), ("seen_at",)]
    assert _rows(target, "SELECT indexname::text FROM pg_indexes WHERE tablename = %s ORDER BY 1", (table,))[0] == (
        pg_name(LONG_INDEX),
    )
    values = _rows(
        target,
        f'SELECT id, "{pg_name(LONG_COLUMN)}", "{pg_name(TWIN_A)}", "{pg_name(TWIN_B)}", seen_at::text '
        f'FROM dbo."{table}" ORDER BY id',
    )
    assert values == [(1, 10, 11, 12, "2020-01-02 01:04:05.123+00"), (2, 20, 21, 22, None)]


def test_alias_type_listed(make_database: Callable[[str], str]) -> None:
    """The stand-in has no CREATE TYPE; the catalog's Column carries what SQL Server's sys.types says."""
    target = open_target(make_database("schema"))
    phone = Column("phone", "nvarchar(20)", LogicalType("string", length=20), alias_type="Phone")
    try:
        (change,) = target.schema_changes(Catalog("mssql", "db", [Table("dbo", "t", [phone])]), "mssql", WriteOptions())
    finally:
        target.close()
    assert (change.kind, change.source, change.target) == ("type_changed", "Phone", "character varying(20)")
    assert "not recreated" in change.reason


def test_names_that_map_alike_are_refused(make_database: Callable[[str], str]) -> None:
    target = open_target(make_database("schema"))
    clash = Table(
        "dbo", "t", [Column(TWIN_A, "int", LogicalType("int32")), Column(pg_name(TWIN_A), "int", LogicalType("int32"))]
    )
    try:
        with pytest.raises(UsageError, match="both become"):
            target.schema_changes(Catalog("mssql", "db", [clash]), "mssql", WriteOptions())
    finally:
        target.close()
