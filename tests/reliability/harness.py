"""Real processes for reliability tests: app servers, and a PostgreSQL of the test's own.

Everything listens on 127.0.0.1 on free ports and is stopped by the test that started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: object, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _pg_bin(name: str) -> str:
    for version_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (version_dir / name).exists():
            return str(version_dir / name)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed")
    return found


class OwnPostgres:
    """A throwaway PostgreSQL server (initdb in a temp dir) that a test may stop at will.

    Fast by default (no fsync). ``durable=True`` runs it as production does (fsync and
    synchronous commits), with the WAL writer asleep for 10 s: a transaction that
    committed without waiting for the disk stays unflushed until another one flushes, so
    an immediate stop (a crash) really loses it.
    """

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tokenbank-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def init(self) -> OwnPostgres:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            _pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        return self

    def start(self) -> None:
        durability = (
            "-c fsync=on -c synchronous_commit=on -c wal_writer_delay=10000"
            if self.durable
            else "-c fsync=off -c synchronous_commit=off"
        )
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} "
            f"{durability} -c max_connections=200"
        )
        self._run(
            _pg_bin("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "immediate") -> None:
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            [
                _pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def own_postgres_server(*, durable: bool = False) -> Iterator[OwnPostgres]:
    """A started :class:`OwnPostgres`, destroyed at the end; a loud skip off CI if the
    server binaries are missing (CI must have them)."""
    try:
        pg = OwnPostgres(durable=durable).init()
        pg.start()
    except (FileNotFoundError, OSError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"SKIPPING: cannot start a PostgreSQL of the test's own: {exc}")
    try:
        yield pg
    finally:
        pg.destroy()


class AppProcess:
    """``tokenbank serve`` in its own process, as production runs it."""

    def __init__(self, env: dict[str, str], port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = os.environ | {"APP_ENV": "development", "JSON_LOGS": "true"} | env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"tokenbank-app-{self.port}-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, migrate: bool = False) -> AppProcess:
        self.launch(migrate=migrate)
        return self.wait_ready()

    def launch(self, *, migrate: bool = False) -> AppProcess:
        """Spawn the process without waiting (start several, then ``wait_ready`` each)."""
        args = [sys.executable, "-m", "tokenbank.cli", "serve", "--port", str(self.port)]
        if not migrate:
            args.append("--no-migrate")
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self, timeout_s: float = 60) -> AppProcess:
        wait_until(self._healthy, timeout_s, f"app on port {self.port} to answer /health")
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"app exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def remove_log(self) -> None:
        self.log.unlink(missing_ok=True)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
