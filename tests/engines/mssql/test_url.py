"""The mssql:// URL and config.MssqlUrl: a URL without options gets the model's defaults, each choice option takes
exactly the words its field declares, and anything else is refused with one line."""

from __future__ import annotations

import pytest

from ray_replicator.config import CONNECT_TIMEOUT_S, MssqlUrl
from ray_replicator.engines.base import UsageError
from ray_replicator.engines.mssql.url import choices, parse_url

CHOICE_OPTIONS = ("reader", "writer", "isolation", "hundred_ns", "nul", "sql_variant")


def test_a_url_without_options_has_the_models_defaults() -> None:
    parsed = parse_url("mssql://sa:pw@db.example/sales")
    assert parsed == MssqlUrl(host="db.example", user="sa", password="pw", database="sales")
    assert (parsed.port, parsed.encrypt, parsed.trust, parsed.reader, parsed.writer) == (
        1433,
        "no",
        True,
        "mssql-python",
        "bulkcopy",
    )
    assert parsed.connect_timeout == CONNECT_TIMEOUT_S
    assert parse_url("mssql://sa:pw@h").database == "master"


@pytest.mark.parametrize("option", CHOICE_OPTIONS)
def test_each_choice_takes_exactly_its_fields_words(option: str) -> None:
    extra = "&bulk_dir=/tmp" if option == "writer" else ""
    for word in choices(option):
        assert getattr(parse_url(f"mssql://sa:pw@h/db?{option}={word.upper()}{extra}"), option) == word
    with pytest.raises(UsageError) as err:
        parse_url(f"mssql://sa:pw@h/db?{option}=bogus")
    assert str(err.value) == f"mssql URL option {option}='bogus' is not one of {', '.join(choices(option))}"


def test_unknown_options_are_named_in_one_line() -> None:
    with pytest.raises(UsageError) as err:
        parse_url("mssql://sa:pw@h/db?readr=pymssql&Packet_Size=4096")
    assert str(err.value) == "unknown mssql URL option(s) packet_size, readr"


def test_the_password_never_shows_in_the_model() -> None:
    parsed = parse_url("mssql://sa:S3cret!pw@h/db")
    assert parsed.password == "S3cret!pw"
    assert "S3cret!pw" not in repr(parsed) and "S3cret!pw" not in parsed.display
