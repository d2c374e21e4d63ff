"""Throwaway PostgreSQL databases and Redis logical databases, and which worker has a socket.

Shared by the scale tests and the benchmarks (``bench/``). Nothing here touches a database
or Redis keys it did not create:

* PostgreSQL: ``CREATE DATABASE onboard_t_<random>`` through an autocommit admin
  connection, ``DROP DATABASE ... WITH (FORCE)`` afterwards.
* Redis: a logical database (1-15, never 0) that is empty when claimed with a ``SET NX``
  marker; everything in it afterwards was written by the run that claimed it, and is
  deleted key by key at the end.

Which worker process serves a websocket is read from the kernel (``/proc/net/tcp*`` and
``/proc/<pid>/fd``): the accepted socket belongs to the worker that accepted it.

Fault drills that stop or restart Redis do it to a :class:`PrivateRedis` of their own,
never to the machine's shared Redis.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psycopg
import redis
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.e2e.conftest import free_port

PG_ADMIN_DSN: Final = os.environ.get(
    "ONBOARD_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
REDIS_URL: Final = os.environ.get("ONBOARD_TEST_REDIS_URL", "redis://127.0.0.1:6379")
DB_PREFIX: Final = "onboard_t_"
CLAIM_KEY: Final = "onboard:scale-test:claim"
_UUID: Final = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LISTEN: Final = "0A"
_ESTABLISHED: Final = "01"


class ServiceUnavailable(RuntimeError):
    """PostgreSQL or Redis cannot be reached; the message says which and how to fix it."""


def require_postgres() -> None:
    """Fail loudly if the admin PostgreSQL connection cannot be opened.

    Raises:
        ServiceUnavailable: With the DSN tried and the driver's reason.
    """
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise ServiceUnavailable(
            f"PostgreSQL is unreachable at {PG_ADMIN_DSN!r} ({exc}). The scale tests and "
            "benchmarks need it (CI starts it in .ci/run); set ONBOARD_TEST_PG_DSN to another "
            "admin connection if it runs elsewhere."
        ) from exc


def require_redis() -> None:
    """Fail loudly if Redis does not answer PING.

    Raises:
        ServiceUnavailable: With the URL tried and the client's reason.
    """
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"Redis is unreachable at {REDIS_URL!r} ({exc}). The scale tests and benchmarks "
            "need it (CI starts it in .ci/run); set ONBOARD_TEST_REDIS_URL if it runs elsewhere."
        ) from exc


def _database_url(name: str) -> str:
    params = conninfo_to_dict(PG_ADMIN_DSN)
    user = params.get("user") or "postgres"
    host = params.get("host") or "127.0.0.1"
    port = params.get("port") or "5432"
    password = f":{params['password']}" if params.get("password") else ""
    return f"postgresql+psycopg://{user}{password}@{host}:{port}/{name}"


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database for one run, dropped afterwards.

    Yields:
        Its SQLAlchemy URL (``postgresql+psycopg://...``).
    """
    require_postgres()
    name = DB_PREFIX + secrets.token_hex(6)
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _database_url(name)
    try:
        yield url
    finally:
        from onboard_app.services.db import dispose_engine

        dispose_engine(url)
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@contextmanager
def claimed_redis_db() -> Iterator[str]:
    """An empty Redis logical database for one run; every key in it is deleted afterwards.

    Yields:
        The Redis URL with the database index (``redis://127.0.0.1:6379/<n>``).

    Raises:
        ServiceUnavailable: If Redis is down or no database 1-15 is empty.
    """
    require_redis()
    marker = secrets.token_hex(8)
    indexes = list(range(1, 16))
    random.shuffle(indexes)
    for index in indexes:
        client = redis.Redis.from_url(REDIS_URL, db=index)
        if client.dbsize() == 0 and client.set(CLAIM_KEY, marker, nx=True, ex=6 * 3600):
            break
        client.close()
    else:
        raise ServiceUnavailable(f"no empty Redis logical database (1-15) at {REDIS_URL!r}")
    base = REDIS_URL.rstrip("/")
    try:
        yield f"{base}/{index}"
    finally:
        # The database was empty when claimed and the claim kept others out: every key
        # in it now was written by this run.
        if client.get(CLAIM_KEY) == marker.encode():
            batch = [key for key in client.scan_iter(count=500) if key != CLAIM_KEY.encode()]
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])
            client.delete(CLAIM_KEY)
        client.close()


def socket_record_instance(redis_url: str, client_token: str) -> str | None:
    """The Reflex worker instance that holds a client's websocket, from Redis.

    Reflex's Redis token manager stores ``token_manager_socket_record_<token>`` (a pickled
    record naming the owning instance) while the socket is connected. Each worker process
    draws its own instance id when it starts.

    Args:
        redis_url: The app's Redis URL.
        client_token: The tab's client token (``sessionStorage.token`` in a browser).

    Returns:
        The instance id, or ``None`` if the token has no connected socket.
    """
    client = redis.Redis.from_url(redis_url)
    try:
        raw = client.get(f"token_manager_socket_record_{client_token}")
    finally:
        client.close()
    match = _UUID.search(raw) if isinstance(raw, bytes) else None
    return match.group().decode() if match else None


class PrivateRedis:
    """A ``redis-server`` of one test run on a free port, holding nothing on disk.

    Started with ``--save "" --appendonly no``: a restart comes back empty, as a Redis
    without persistence (or a replaced one) does. Never the machine's shared Redis.

    Args:
        folder: Its working directory.
    """

    def __init__(self, folder: Path) -> None:
        """Choose a port; nothing runs yet."""
        self.port = free_port()
        self.folder = folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Its logical database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def installed() -> bool:
        """Whether ``redis-server`` is on PATH."""
        return shutil.which("redis-server") is not None

    def start(self, timeout: float = 20) -> None:
        """Start it (on the same port as before) and wait until it answers PING.

        Raises:
            ServiceUnavailable: If it does not answer within ``timeout`` seconds.
        """
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        self.stop()
        raise ServiceUnavailable(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        """Stop it (SIGTERM; what it held is gone)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Stop it and start an empty one on the same port."""
        self.stop()
        self.start()

    def keys(self) -> int:
        """How many keys it holds now."""
        client = redis.Redis.from_url(self.url, socket_timeout=3)
        try:
            return int(client.dbsize())
        finally:
            client.close()

    def lock_keys(self) -> list[bytes]:
        """Reflex's state locks in it now (a worker holds those tabs' state in memory)."""
        client = redis.Redis.from_url(self.url, socket_timeout=3)
        try:
            return list(client.scan_iter(match="*_lock", count=500))
        finally:
            client.close()


@dataclass(frozen=True)
class _Socket:
    local_port: int
    remote_port: int
    state: str
    inode: int


def _sockets() -> list[_Socket]:
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            found.append(
                _Socket(
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    state,
                    inode,
                )
            )
    return found


def _descendants(pid: int) -> list[int]:
    result, todo = [], [pid]
    while todo:
        current = todo.pop()
        result.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return result


def _owner(inodes: set[int], pids: list[int]) -> dict[int, int]:
    owners: dict[int, int] = {}
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners[inode] = pid
    return owners


def worker_pids(app_pid: int, port: int) -> list[int]:
    """The processes under ``app_pid`` that listen on the app's port (one per worker).

    Args:
        app_pid: The ``reflex run`` process.
        port: The app's port.

    Returns:
        The worker pids, sorted.
    """
    inodes = {s.inode for s in _sockets() if s.local_port == port and s.state == _LISTEN}
    return sorted(set(_owner(inodes, _descendants(app_pid)).values()))


def server_pid(app_pid: int, port: int, client_port: int) -> int | None:
    """The worker process that accepted the connection coming from ``client_port``.

    Args:
        app_pid: The ``reflex run`` process.
        port: The app's port.
        client_port: The client side's TCP port.

    Returns:
        The pid, or ``None`` if no such connection is open.
    """
    inodes = {
        s.inode
        for s in _sockets()
        if s.local_port == port and s.remote_port == client_port and s.state == _ESTABLISHED
    }
    owners = _owner(inodes, _descendants(app_pid))
    return next(iter(owners.values()), None)
