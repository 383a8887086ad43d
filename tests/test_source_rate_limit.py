"""The sources' rate limit holds across processes: it lives in Postgres, not in a process."""

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers import wait_for

from ops_platform.sources.notion import RATE_LIMIT
from ops_platform.sources.rate_limit import RateLimit
from ops_platform.sources.standins import NOTION, StandIns

CALLS_PER_PROCESS = 8
RUNNER = textwrap.dedent("""
    import sys
    from ops_platform.resources.postgres import PostgresResource
    from ops_platform.sources.client import SourceClient
    from ops_platform.sources.notion import NOTION_VERSION, RATE_LIMIT
    from pathlib import Path
    from helpers import wait_for
    database_url, base_url, token, runner, calls, gate = sys.argv[1:]
    Path(gate, f"ready{runner}").touch()
    wait_for(lambda: Path(gate, "go").exists(), "the start signal", every=0.01)
    headers = {"Authorization": f"Bearer {token}", "Notion-Version": NOTION_VERSION, "X-Runner": runner}
    with SourceClient("notion", base_url, headers, PostgresResource(url=database_url), RATE_LIMIT) as client:
        for _ in range(int(calls)):
            client.call("POST", "/v1/search", json={"page_size": 1})
""")


def most_in_any_window(arrivals: list[float], window: float) -> int:
    arrivals = sorted(arrivals)
    return max(sum(1 for t in arrivals[i:] if t < start + window) for i, start in enumerate(arrivals))


def test_two_processes_together_stay_within_3_requests_a_second(database_url, tmp_path):
    tests = Path(__file__).parent
    with StandIns() as api:
        runners = [subprocess.Popen([sys.executable, "-c", RUNNER, database_url, api.base_url, api.token, str(n),
                                     str(CALLS_PER_PROCESS), str(tmp_path)], cwd=tests) for n in (1, 2)]
        wait_for(lambda: all((tmp_path / f"ready{n}").exists() for n in (1, 2)), "both runners ready", timeout=60)
        (tmp_path / "go").touch()
        assert [r.wait(timeout=120) for r in runners] == [0, 0]
        arrivals = api.arrivals[NOTION]
        by_runner = [r["headers"]["X-Runner"] for r in api.requests[NOTION]]
    assert len(arrivals) == 2 * CALLS_PER_PROCESS
    first = {n: by_runner.index(n) for n in ("1", "2")}
    last = {n: len(by_runner) - 1 - by_runner[::-1].index(n) for n in ("1", "2")}
    assert first["1"] < last["2"] and first["2"] < last["1"], f"the two ran at the same time: {by_runner}"
    assert most_in_any_window(arrivals, 1.0) <= RATE_LIMIT.limit
    # Not vacuous: 16 calls at 3 a second take at least five windows.
    assert max(arrivals) - min(arrivals) >= 5.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(1, 5), window=st.integers(1, 3), takes=st.integers(1, 16))
def test_no_window_ever_holds_more_slots_than_the_limit(postgres, limit, window, takes):
    bucket = RateLimit(f"prop_{limit}_{window}_{takes}", limit, window)
    slots = sorted(bucket.take(postgres)[0] for _ in range(takes))
    for first, later in zip(slots, slots[limit:], strict=False):
        assert later - first >= timedelta(seconds=window)
    # paced: consecutive slots window/limit apart, and the first one at once
    assert all(b - a >= timedelta(seconds=window / limit) for a, b in zip(slots, slots[1:], strict=False))
