"""BEGIN/COMMIT/ROLLBACK TRANSACTION as statements, with the ENVCHANGE a client tracks its transaction by."""

from __future__ import annotations

from collections.abc import Iterator

from ..results import Done, EnvChange, Result
from ..session import SessionCore
from ..sqltext import Statement, unsupported


class TransactionStatements(SessionCore):
    """BEGIN TRAN, COMMIT, ROLLBACK (SAVE TRANSACTION is not supported)."""

    def _begin_tran(self, st: Statement) -> Iterator[Result]:
        was = self.trancount
        desc = self.begin()
        if was == 0:
            yield EnvChange("begin_tran", new_value=desc)
        yield Done("BEGIN TRANSACTION")

    def _commit_tran(self, st: Statement) -> Iterator[Result]:
        desc = self._descriptor
        self.commit()
        if self.trancount == 0:
            yield EnvChange("commit_tran", old_value=desc)
        yield Done("COMMIT TRANSACTION")

    def _rollback_tran(self, st: Statement) -> Iterator[Result]:
        desc = self._descriptor
        self.rollback()
        yield EnvChange("rollback_tran", old_value=desc)
        yield Done("ROLLBACK TRANSACTION")

    def _save_tran(self, st: Statement) -> Iterator[Result]:
        raise unsupported("SAVE TRANSACTION")
