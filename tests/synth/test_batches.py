"""Batches depend only on (scale, seed): not on the batch size, and parts concatenate to the table."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ray_replicator.synth import stackoverflow as so
from tests.synth.generated import SMALL, TWO_CHUNKS, generated_table


def test_generated_counts_match_row_counts() -> None:
    for name, n in so.row_counts(SMALL, include_extra=True).items():
        assert sum(b.num_rows for b in so.generate_batches(name, SMALL, 1)) == n, name


@pytest.mark.parametrize("name", ["Posts", "Users", "Votes", "Comments", "PostHistory"])
def test_same_bytes_for_same_seed_whatever_the_batch_size(name: str) -> None:
    whole = generated_table(name, TWO_CHUNKS)
    assert whole.equals(generated_table(name, TWO_CHUNKS, batch_rows=997))
    assert whole.equals(generated_table(name, TWO_CHUNKS, batch_rows=1_000_000))
    assert not whole.equals(generated_table(name, TWO_CHUNKS, seed=43))


def test_batches_are_valid_and_bounded() -> None:
    for name in ("Posts", "Users", "Comments", "PostHistory", "Tags"):
        for rb in so.generate_batches(name, TWO_CHUNKS, 7, batch_rows=5000):
            rb.validate(full=True)
            assert rb.num_rows <= 5000
            assert rb.schema == so.arrow_schema(name)


def test_parts_concatenate_to_the_table() -> None:
    whole = generated_table("Votes", TWO_CHUNKS)
    parts = [pa.Table.from_batches(list(so.reader("Votes", TWO_CHUNKS, 42, part=p, parts=3))) for p in range(3)]
    assert pa.concat_tables(parts).equals(whole)
