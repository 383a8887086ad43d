"""One platform per data directory: a second `ops up` refuses at once, naming the running one, and no
`ops` command stops a Postgres it did not start. Real processes: the real `ops up` (Postgres, Dagster
webserver and daemon) in its own process group, and the CLI as a subprocess."""

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import psycopg
import pytest
from helpers import free_port, wait_for

from ops_platform.embedded import embedded_postgres
from ops_platform.runtime import PlatformRunning, lock_platform, running_platform

EMBEDDED_OVERRIDES = ("OPS_DATABASE_URL", "DAGSTER_PG_URL", "OPS_WAREHOUSE_URL", "DAGSTER_HOME")
READY_WITHIN = 180  # seconds: Postgres, migrations, a small demo, then Dagster's webserver (~30 s when idle)


def ops_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ops_platform.cli", *args]


def embedded_env(home) -> dict[str, str]:
    """This environment on the embedded defaults under `home` (no configured Postgres)."""
    env = {key: value for key, value in os.environ.items() if key not in EMBEDDED_OVERRIDES}
    return {**env, "OPS_HOME": str(home)}


def run_ops(tmp_path, home, *args):
    return subprocess.run(ops_command(*args), cwd=tmp_path, env=embedded_env(home), capture_output=True, text=True,
                          timeout=180)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_served(process: subprocess.Popen, url: str, log) -> None:
    """Poll the webserver until it answers; fail with the log as soon as `ops up` exits."""
    def served() -> bool:
        if process.poll() is not None:
            pytest.fail(f"ops up exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        return answers(url)

    wait_for(served, f"ops up to serve {url}", timeout=READY_WITHIN, every=0.5)


def postgres_answers(home) -> bool:
    pg = embedded_postgres(home)
    if not pg.is_running():
        return False
    with psycopg.connect(pg.url("ops"), connect_timeout=5) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.fixture
def first_platform(tmp_path):
    """The real `ops up` on a fresh OPS_HOME: (process, home, url, api_url) once its UI and HTTP service answer."""
    home, port, api_port = tmp_path / "ops", free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "first.log"
    with open(log, "w") as out:
        process = subprocess.Popen(ops_command("up", "--port", str(port), "--api-port", str(api_port),
                                               "--demo-scale", "50"), cwd=tmp_path,
                                   env=embedded_env(home), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_until_served(process, f"{url}/server_info", log)
        wait_until_served(process, f"http://127.0.0.1:{api_port}/healthz", log)
        yield process, home, url, f"http://127.0.0.1:{api_port}"
    finally:  # the whole process group, even after `ops up` exited: Dagster's code server may outlive it
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        embedded_postgres(home).stop()  # the test's own cleanup, whatever the test left


def test_a_second_ops_up_refuses_naming_the_running_one_and_leaves_it_running(tmp_path, first_platform):
    first, home, url, api_url = first_platform
    other_port = free_port()
    second = run_ops(tmp_path, home, "up", "--port", str(other_port))
    assert second.returncode == 1 and second.stdout == ""
    assert second.stderr == (f"ops up: a platform is already running on ops (pid {first.pid}, {url});"
                             " stop it first\n")
    assert not answers(f"http://127.0.0.1:{other_port}/server_info")  # no second webserver started
    assert first.poll() is None and answers(f"{url}/server_info") and postgres_answers(home)
    assert answers(f"{api_url}/healthz")  # `ops up` serves the HTTP service next to the UI

    shown = run_ops(tmp_path, home, "controls", "show")  # a short command uses the platform's Postgres ...
    assert shown.returncode == 0 and "kill_switch        False" in shown.stdout, shown.stderr
    assert postgres_answers(home)  # ... and leaves it running

    os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: `ops up` stops what it started, its Postgres included
    assert first.wait(timeout=120) is not None
    assert not embedded_postgres(home).is_running()
    assert running_platform(home) is None and not answers(f"{api_url}/healthz")


def test_no_command_stops_a_postgres_it_did_not_start_or_one_a_platform_runs_on(tmp_path):
    home = tmp_path / "ops"
    pg = embedded_postgres(home)
    try:
        with lock_platform(home, "http://127.0.0.1:3999"):  # a platform runs on this data directory
            migrated = run_ops(tmp_path, home, "migrate")  # starts the Postgres: none was running
            assert migrated.returncode == 0, migrated.stderr
            assert postgres_answers(home)  # the platform may use it now: left running
        again = run_ops(tmp_path, home, "migrate")  # no platform, a Postgres it did not start
        assert again.returncode == 0 and "none pending" in again.stdout, again.stderr
        assert postgres_answers(home)
        pg.stop()
        alone = run_ops(tmp_path, home, "migrate")  # nothing running: it starts and stops its own
        assert alone.returncode == 0, alone.stderr
        assert not pg.is_running()
    finally:
        pg.stop()


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    home, url = tmp_path / "ops", "http://127.0.0.1:3998"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from ops_platform.runtime import lock_platform;"
                               f" lock = lock_platform(Path({str(home)!r}), {url!r}); print('locked', flush=True);"
                               " sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"  # readiness through the pipe
        assert running_platform(home) == {"pid": holder.pid, "url": url}
        with pytest.raises(PlatformRunning) as refused:
            lock_platform(home, "http://127.0.0.1:3000")
        assert str(refused.value) == (f"a platform is already running on {home} (pid {holder.pid}, {url});"
                                      " stop it first")
    finally:
        holder.kill()  # a crash: the OS releases the lock
        holder.wait()
    with lock_platform(home, "http://127.0.0.1:3000"):
        assert running_platform(home) == {"pid": os.getpid(), "url": "http://127.0.0.1:3000"}
    assert running_platform(home) is None
