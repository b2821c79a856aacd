"""Byte-level round trips of the result encoder against the decoder the server uses for client data."""

from __future__ import annotations

import datetime as dt
import struct

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mssql_standin import wire
from mssql_standin.results import ColumnSpec
from tests.standin.conftest import PASSWORD, TYPED_COLUMNS, TYPED_ROWS, USER, client_cursor, typed_table


def decode_stream(columns: list[ColumnSpec], rows: bytes) -> list[tuple[object, ...]]:
    r = wire.Reader(wire.colmetadata(columns) + rows)
    assert r.u8() == wire.TOK_COLMETADATA
    meta = wire.read_colmetadata(r)
    out = []
    while r.remaining():
        assert r.u8() == wire.TOK_ROW
        out.append(tuple(wire.read_value(r, ti, in_row=True) for _spec, ti in meta))
    return out


def test_every_type_round_trips_exactly() -> None:
    data, offsets = wire.encode_rows(TYPED_COLUMNS, typed_table().to_batches()[0])
    assert offsets[-1] == len(data)
    got = decode_stream(TYPED_COLUMNS, bytes(data))
    for want, row in zip(TYPED_ROWS, got, strict=True):
        for spec, w, g in zip(TYPED_COLUMNS, want, row, strict=True):
            if spec.type_name == "real" and w is not None:
                assert g == pytest.approx(w, rel=1e-7)
            else:
                assert g == w, spec.name


def test_bulk_rows_decode_every_type_exactly() -> None:
    """A bulk-load message (COLMETADATA, ROWs, DONE) decodes to the very batch that was encoded, NULLs too."""
    table = typed_table()
    data, _ = wire.encode_rows(TYPED_COLUMNS, table.to_batches()[0])
    payload = wire.colmetadata(TYPED_COLUMNS) + bytes(data) + wire.done()
    specs, batch = wire.read_bulk_rows(payload)
    assert [s.name for s in specs] == [c.name for c in TYPED_COLUMNS]
    for spec, want, got in zip(TYPED_COLUMNS, table.columns, batch.columns, strict=True):
        assert got.type == want.type, spec.name
        assert got.to_pylist() == want.to_pylist(), spec.name


def test_bulk_rows_refuse_a_message_that_ends_early() -> None:
    data, offsets = wire.encode_rows(TYPED_COLUMNS, typed_table().to_batches()[0])
    cut = bytes(data)[: int(offsets[1]) - 3]
    with pytest.raises(wire.ProtocolError, match="ends early"):
        wire.read_bulk_rows(wire.colmetadata(TYPED_COLUMNS) + cut)


def test_row_offsets_mark_token_starts() -> None:
    data, offsets = wire.encode_rows(TYPED_COLUMNS, typed_table().to_batches()[0])
    raw = bytes(data)
    assert all(raw[o] == wire.TOK_ROW for o in offsets[:-1])


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (ColumnSpec("x", "int"), 1, b"\x04\x01\x00\x00\x00"),
        (ColumnSpec("x", "int", nullable=False), -2, b"\xfe\xff\xff\xff"),
        (ColumnSpec("x", "int"), None, b"\x00"),
        (ColumnSpec("x", "tinyint"), 255, b"\x01\xff"),
        (ColumnSpec("x", "decimal", precision=5, scale=2), __import__("decimal").Decimal("-1.23"),
         b"\x05\x00\x7b\x00\x00\x00"),
        (ColumnSpec("x", "money"), __import__("decimal").Decimal("1.0001"), b"\x08\x00\x00\x00\x00\x11\x27\x00\x00"),
        (ColumnSpec("x", "nvarchar", length=10), "", b"\x00\x00"),
        (ColumnSpec("x", "nvarchar", length=10), None, b"\xff\xff"),
        (ColumnSpec("x", "nvarchar", length=-1), "", b"\x00" * 8 + b"\x00" * 4),
        (ColumnSpec("x", "nvarchar", length=-1), None, b"\xff" * 8),
        (ColumnSpec("x", "nvarchar", length=-1), "a", b"\x02" + b"\x00" * 7 + b"\x02\x00\x00\x00a\x00" + b"\x00" * 4),
        (ColumnSpec("x", "varchar", length=10), "€", b"\x01\x00\x80"),
        (ColumnSpec("x", "datetime"), __import__("datetime").datetime(1900, 1, 2, 0, 0, 1),
         struct.pack("<BiI", 8, 1, 300)),
        (ColumnSpec("x", "uniqueidentifier"), bytes(range(16)),
         b"\x10" + bytes([3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15])),
        (ColumnSpec("x", "date"), __import__("datetime").date(1, 1, 2), b"\x03\x01\x00\x00"),
        (ColumnSpec("x", "time", scale=0), 10_000_000, b"\x03\x01\x00\x00"),
    ],
)  # fmt: skip
def test_value_bytes_match_the_spec(spec: ColumnSpec, value: object, expected: bytes) -> None:
    assert wire.encode_value(spec, value) == expected


def test_nullable_fixed_columns_stay_vectorised_and_exact() -> None:
    n = 10_000
    rng = np.random.default_rng(1)
    ints = rng.integers(-(2**31), 2**31 - 1, n)
    mask = rng.random(n) < 0.3
    cols = [ColumnSpec("a", "int"), ColumnSpec("b", "bigint", nullable=False), ColumnSpec("c", "float")]
    batch = pa.record_batch(
        [pa.array(ints, pa.int32(), mask=mask), pa.array(ints * 3, pa.int64()), pa.array(ints / 7, mask=~mask)],
        names=["a", "b", "c"],
    )
    data, offsets = wire.encode_rows(cols, batch)
    got = decode_stream(cols, bytes(data))
    assert len(got) == n and len(offsets) == n + 1
    for i in (0, 1, 2, n // 2, n - 1):
        assert got[i] == (None if mask[i] else int(ints[i]), int(ints[i]) * 3, None if not mask[i] else ints[i] / 7)


def test_login7_password_and_fields_decode() -> None:
    def enc_pw(p: str) -> bytes:
        return bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in p.encode("utf-16-le"))

    fields = {"host": "h", "user": "sa", "pw": "Pa$$w0rd", "app": "app", "server": "srv", "lang": "", "db": "Db1"}
    var = bytearray()
    offsets: list[tuple[int, int]] = []
    for key in ("host", "user", "pw", "app", "server"):
        raw = enc_pw(fields[key]) if key == "pw" else fields[key].encode("utf-16-le")
        offsets.append((94 + len(var), len(raw) // 2))
        var += raw
    head = struct.pack("<IIIIII", 0, 0x74000004, 8192, 0, 0, 0) + bytes([0, 0, 0, 0]) + struct.pack("<ii", 0, 0)
    ptrs = b"".join(struct.pack("<HH", o, n) for o, n in offsets)
    ptrs += struct.pack("<HH", 0, 0) + struct.pack("<HH", 94 + len(var), 0) + struct.pack("<HH", 94 + len(var), 0)
    db = "Db1".encode("utf-16-le")
    ptrs += struct.pack("<HH", 94 + len(var), 3)
    ptrs += b"\x00" * 6 + struct.pack("<HHHHHHI", 0, 0, 0, 0, 0, 0, 0)
    payload = head + ptrs
    assert len(payload) == 94
    login = wire.parse_login7(payload + bytes(var) + db)
    assert (login.username, login.password, login.database, login.packet_size) == ("sa", "Pa$$w0rd", "Db1", 8192)


def test_prelogin_answer_parses_back() -> None:
    opts = wire.parse_prelogin(wire.build_prelogin(wire.ENCRYPT_OFF))
    assert opts[1] == b"\x00" and opts[0][:4] == bytes([16, 0, 0x03, 0xE8]) and 6 not in opts


def test_packetize_splits_and_marks_eom() -> None:
    pkts = wire.packetize(wire.PKT_REPLY, b"x" * 10_000, 4096)
    assert [len(p) for p in pkts] == [4096, 4096, 10_000 - 2 * 4088 + 8]
    assert [p[1] for p in pkts] == [0, 0, 1] and [p[6] for p in pkts] == [1, 2, 3]


LEGACY = [
    ColumnSpec("t", "text", length=-1),
    ColumnSpec("nt", "ntext", length=-1),
    ColumnSpec("im", "image", length=-1),
    ColumnSpec("v", "sql_variant"),
]
LEGACY_ROWS = [("café", "λ😀", b"\x00\x01", "x"), (None, None, None, None), ("", "", b"", "")]


def test_text_ntext_image_and_variant_round_trip() -> None:
    table = pa.table({c.name: [r[i] for r in LEGACY_ROWS] for i, c in enumerate(LEGACY)})
    data, _ = wire.encode_rows(LEGACY, table.to_batches()[0])
    assert decode_stream(LEGACY, bytes(data)) == LEGACY_ROWS


def test_legacy_types_read_by_python_tds(stub_engine, stub_server) -> None:
    import pytds

    table = pa.table({c.name: [r[i] for r in LEGACY_ROWS] for i, c in enumerate(LEGACY)})
    stub_engine.add_table("leg", LEGACY, table)
    conn = pytds.connect(stub_server.host, "standin", USER, PASSWORD, port=stub_server.port, autocommit=True)
    cur = conn.cursor()
    cur.execute("select * from leg")
    assert cur.fetchall() == LEGACY_ROWS


@pytest.mark.parametrize("scale", range(8))
def test_fractional_second_scales(scale: int) -> None:
    unit = 10 ** (7 - scale)
    tod = (86_400 * 10_000_000 - 1) // unit * unit  # the last instant of a day at this scale
    cols = [
        ColumnSpec("t", "time", scale=scale),
        ColumnSpec("d2", "datetime2", scale=scale),
        ColumnSpec("dto", "datetimeoffset", scale=scale),
    ]
    d2 = 3_155_378_975_999_999_999 // unit * unit
    rows = [(tod, d2, {"utc": 1_000 * unit, "offset_min": -840}), (0, 0, {"utc": 0, "offset_min": 0})]
    table = pa.table({c.name: pa.array([r[i] for r in rows], type=wire.arrow_type(c)) for i, c in enumerate(cols)})
    data, _ = wire.encode_rows(cols, table.to_batches()[0])
    assert decode_stream(cols, bytes(data)) == rows
    assert wire.type_info(cols[0]) == bytes([wire.T_TIMEN, scale])


@pytest.mark.parametrize(
    ("collation", "text", "codec"),
    [
        ("Cyrillic_General_CI_AS", "Привет, мир", "cp1251"),
        ("Arabic_CI_AS", "مرحبا", "cp1256"),
        ("Greek_CS_AS", "Καλημέρα", "cp1253"),
        ("Japanese_CI_AS", "日本語テキスト", "cp932"),
        ("Latin1_General_100_CI_AS", "café €", "cp1252"),
        (None, "café €", "cp1252"),
    ],
)
def test_varchar_uses_the_collation_code_page(collation: str | None, text: str, codec: str) -> None:
    spec = ColumnSpec("v", "varchar", length=100, collation=collation)
    raw = text.encode(codec)
    assert wire.encode_value(spec, text) == struct.pack("<H", len(raw)) + raw
    assert wire.collation_codec(wire.collation_bytes(collation)) == codec
    table = pa.table({"v": [text, "abc", None]})
    data, _ = wire.encode_rows([spec], table.to_batches()[0])
    assert decode_stream([spec], bytes(data)) == [(text,), ("abc",), (None,)]


def test_characters_outside_the_code_page_become_question_marks() -> None:
    spec = ColumnSpec("v", "varchar", length=100, collation="Cyrillic_General_CI_AS")
    assert wire.encode_value(spec, "Жλ😀") == b"\x03\x00\xc6??"


VARIANT_NUMBERS = [ColumnSpec("seed", "sql_variant"), ColumnSpec("ratio", "sql_variant")]


def variant_table() -> pa.Table:
    return pa.table(
        {"seed": pa.array([5, None, 3_000_000_000], pa.int64()), "ratio": pa.array([0.5, 1.0, None], pa.float64())}
    )


def test_sql_variant_numbers_carry_their_base_type() -> None:
    """MS-TDS SSVARIANTTYPE: 4-byte length, BaseType, PropBytes, value (int, bigint beyond int, float)."""
    data, _ = wire.encode_rows(VARIANT_NUMBERS, variant_table().to_batches()[0])
    first = bytes(data)[1:]  # after the ROW token
    assert first[:8] == struct.pack("<IBB", 6, wire.T_INT4, 0) + b"\x05\x00"
    assert decode_stream(VARIANT_NUMBERS, bytes(data)) == [(5, 0.5), (None, 1.0), (3_000_000_000, None)]


def test_sql_variant_numbers_reach_clients_as_numbers(stub_engine, stub_server) -> None:
    stub_engine.add_table("var", VARIANT_NUMBERS, variant_table())
    want = [(5, 0.5), (None, 1.0), (3_000_000_000, None)]
    cur = client_cursor("pytds", stub_server)
    cur.execute("select * from var")
    assert cur.fetchall() == want
    mcur = client_cursor("mssql_python", stub_server)
    mcur.execute("select * from var")
    assert [tuple(r) for r in mcur.fetchall()] == want
    # FreeTDS's db-lib hands pymssql a sql_variant's base-type bytes, as it does against SQL Server itself
    pc = client_cursor("pymssql", stub_server)
    pc.execute("select * from var")
    got = pc.fetchall()
    assert got[0][0] == struct.pack("<i", 5) and got[2][0] == struct.pack("<q", 3_000_000_000)


def test_error_text_is_cut_as_sql_server_cuts_it() -> None:
    assert wire.error_text("x" * 2047) == "x" * 2047
    assert wire.error_text("x" * 2048) == "x" * 2044 + "..."
    cut = wire.error_text("😀" * 2000)  # never half a surrogate pair
    assert cut.endswith("...") and len(cut.encode("utf-16-le")) // 2 <= 2047 and "\ud83d" not in cut
    for text in ("y" * 70_000, "\ud800 lone surrogate", ""):
        tok = wire.error_token(50000, text, state=300, severity=16, line=2**40)
        assert tok[0] == wire.TOK_ERROR and struct.unpack_from("<H", tok, 1)[0] == len(tok) - 3
    assert len(wire.info_token(0, "p" * 70_000)) < 65_535


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=30),
    start=st.integers(0, 5),
    codec=st.sampled_from(["utf-16", "cp1252", "cp1251", "cp932"]),
)
def test_text_bytes_equal_each_value_encoded_alone(values: list[str | None], start: int, codec: str) -> None:
    """The column-at-once transcoding gives what encoding each value alone gives (NULL as empty), on sliced
    arrays too: BMP and astral characters, characters the code page lacks ('?'), empty strings."""
    arr = pa.array(values, pa.large_string()).slice(min(start, len(values)))
    utf16 = codec == "utf-16"
    data, offs = wire._text_bytes(arr, utf16, "cp1252" if utf16 else codec)
    alone = [(v or "").encode("utf-16-le" if utf16 else codec, errors="replace") for v in arr.to_pylist()]
    assert bytes(data) == b"".join(alone)
    assert list(np.diff(offs)) == [len(v) for v in alone]


MIXED = [
    ColumnSpec("id", "bigint", nullable=False),
    ColumnSpec("n", "int"),
    ColumnSpec("body", "nvarchar", length=-1),
    ColumnSpec("at", "datetime"),
    ColumnSpec("title", "nvarchar", length=20),
    ColumnSpec("raw", "varbinary", length=10),
    ColumnSpec("flag", "bit"),
]


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
            st.one_of(st.none(), st.text(max_size=30)),
            st.one_of(st.none(), st.datetimes(dt.datetime(1753, 1, 1)).map(lambda d: d.replace(microsecond=0))),
            st.one_of(st.none(), st.text(max_size=20)),
            st.one_of(st.none(), st.binary(max_size=10)),
            st.one_of(st.none(), st.booleans()),
        ),
        max_size=25,
    ),
    start=st.integers(0, 5),
)
def test_rows_mixing_fixed_and_variable_columns_round_trip(rows: list[tuple[object, ...]], start: int) -> None:
    """Fixed-width runs (token, NOT NULL and nullable numbers, length prefixes) packed between text and binary
    values, on sliced batches: every value decodes back as it was."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in MIXED]
    batch = pa.record_batch(
        [pa.array(list(c), wire.arrow_type(spec)) for c, spec in zip(columns, MIXED, strict=True)],
        names=[c.name for c in MIXED],
    ).slice(min(start, len(rows)))
    data, offsets = wire.encode_rows(MIXED, batch)
    assert offsets[-1] == len(data) and len(offsets) == batch.num_rows + 1
    assert decode_stream(MIXED, bytes(data)) == [tuple(r) for r in rows[min(start, len(rows)) :]]


def test_null_slots_holding_bytes_are_sent_as_null() -> None:
    """Arrow lets a NULL slot's offsets span bytes; those bytes are never sent, in a text or a binary column."""
    validity = pa.py_buffer(np.packbits(np.array([1, 0, 1], dtype=np.uint8), bitorder="little").tobytes())
    offsets = pa.py_buffer(np.array([0, 3, 5, 8], dtype="<i4").tobytes())
    values = pa.py_buffer("abcλdef".encode())
    text = pa.Array.from_buffers(pa.string(), 3, [validity, offsets, values])
    raw = pa.Array.from_buffers(pa.binary(), 3, [validity, offsets, values])
    cols = [ColumnSpec("s", "nvarchar", length=10), ColumnSpec("m", "nvarchar", length=-1),
            ColumnSpec("v", "varchar", length=10), ColumnSpec("b", "varbinary", length=10)]  # fmt: skip
    data, _ = wire.encode_rows(cols, pa.record_batch([text, text, text, raw], names=["s", "m", "v", "b"]))
    assert decode_stream(cols, bytes(data)) == [("abc",) * 3 + (b"abc",), (None,) * 4, ("def",) * 3 + (b"def",)]
