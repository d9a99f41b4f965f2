"""The app as a real server process, and wrk to load it.

Why wrk and not Locust: this machine has two cores shared by the app, PostgreSQL and the
load generator. wrk is C on epoll and needs a few percent of a core for thousands of
requests a second; Locust (Python, even with FastHttpUser) would take a large share of
the CPU the app needs and blur exactly the difference we measure. A Lua script gives
each request a user's token and chat, and prints wrk's own latency percentiles as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import log

BENCH_JWT_SECRET = "bench-only-jwt-secret-0123456789abcdef0123"
LUA_DIR = Path(__file__).parent / "wrk"
#: The Redis the app servers count rate limits in, as production does (``REDIS_URL``).
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: High enough never to trip, so the limiter runs on every request but refuses none.
NEVER_TRIPS = str(10**9)


def rate_limit_store() -> str:
    """``redis`` when the bench's Redis answers, else ``database`` (the app's fallback)."""
    import redis

    try:
        redis.Redis.from_url(BENCH_REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return "database"
    return "redis"


def rate_limit_env() -> dict[str, str]:
    """Rate limits ON, as in production, on the store production uses when it answers.

    Every server of one bench run shares one key prefix of its own in Redis, so their
    counts meet as several processes' would and never mix with another run's."""
    env = {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_LOGIN_PER_MIN": NEVER_TRIPS,
        "RATE_LIMIT_REGISTER_PER_MIN": NEVER_TRIPS,
        "RATE_LIMIT_PAYMENT_PER_MIN": NEVER_TRIPS,
        "RATE_LIMIT_GENERATE_PER_MIN": NEVER_TRIPS,
    }
    if rate_limit_store() == "redis":
        env |= {"REDIS_URL": BENCH_REDIS_URL, "REDIS_KEY_PREFIX": _REDIS_PREFIX}
    return env


_REDIS_PREFIX = f"tokenbank-bench:{os.getpid()}-{int(time.time())}:"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    """wrk from Debian; installed on first use when we are root (as on the dev machines)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("installing wrk (apt-get install -y wrk)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
        if subprocess.run(["wrk", "--version"], capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is needed for the HTTP benchmarks: apt-get install wrk")
    return found


@dataclass
class AppServer:
    """``tokenbank serve`` in its own process, on a free port of 127.0.0.1."""

    env: dict[str, str]
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> AppServer:
        self.port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "AI_"))},
            "APP_ENV": "development",
            "JWT_SECRET": BENCH_JWT_SECRET,
            **rate_limit_env(),
            "AI_PROVIDER": "offline",
            "LOG_LEVEL": "WARNING",
            # Sign-up is set-up here, not what we measure: keep argon2 cheap.
            "PASSWORD_HASH_TIME_COST": "1",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
            # Every bench user signs up from loopback, and a run outlives a 15-minute token.
            "SIGNUP_PER_IP_PER_DAY": "1000000",
            "JWT_EXPIRES_S": str(6 * 3600),
            "CLIENT_DIST": "/nonexistent-client-dist",
            # 64 connections on two cores is deliberate overload: let requests queue for a
            # database connection (as behind a load balancer) rather than fail at 5 s.
            "DATABASE_POOL_SIZE": "16",
            "DATABASE_TIMEOUT_S": "30",
            **self.env,
        }
        fd, name = tempfile.mkstemp(prefix="tokenbank-bench-", suffix=".log")
        self.log_path = Path(name)
        tokenbank = Path(sys.executable).with_name("tokenbank")
        self.process = subprocess.Popen(
            [str(tokenbank), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env,
            stdout=fd,
            stderr=subprocess.STDOUT,
        )
        os.close(fd)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)  # polling the port the server is about to open
        failure = f"the app did not answer /health in {timeout_s}s:\n{self.log_tail()}"
        self.stop()  # a failed start is no context (no __exit__): never leave it running
        raise RuntimeError(failure)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the app process")

    def metric(self, name: str) -> float:
        """A counter's value from the app's /metrics (0 when it has no sample yet)."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def cpu_s(self) -> float:
        """CPU seconds the app process has used (user + system), from /proc."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int
    non_2xx: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def write_targets(path: Path, targets: list[tuple[str, str]]) -> None:
    """One ``path<TAB>Authorization`` line per user, read by the Lua script."""
    path.write_text("".join(f"{p}\t{auth}\n" for p, auth in targets))


def run_wrk(
    url: str, script: str, connections: int, seconds: float, env: dict[str, str]
) -> WrkResult:
    wrk = ensure_wrk()
    threads = max(1, min(connections, 2))
    args = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    run_env = {**os.environ, **env, "BENCH_THREADS": str(threads)}
    out = subprocess.run(args, capture_output=True, text=True, env=run_env)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no JSON summary:\n{out.stdout}\n{out.stderr}")
    s = json.loads(line)
    errors = sum(int(s["errors"][k]) for k in ("connect", "read", "write", "timeout"))
    if out.stderr.strip():
        log(f"wrk: {out.stderr.strip()[:600]}")
    return WrkResult(
        requests=int(s["requests"]),
        seconds=int(s["duration_us"]) / 1e6,
        errors=errors,
        non_2xx=int(s["errors"]["status"]),
        p50_ms=float(s["p50_us"]) / 1000,
        p90_ms=float(s["p90_us"]) / 1000,
        p99_ms=float(s["p99_us"]) / 1000,
    )
