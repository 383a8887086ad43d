"""Embedded mode: two processes touching the chDB directory at once both succeed; the pool limit is 1."""

import subprocess
import sys
from pathlib import Path

import dagster as dg
import yaml

from ops_platform.assets.sync import WAREHOUSE_ASSETS
from ops_platform.resources.warehouse import WAITING_MESSAGE, WAREHOUSE_POOL, WarehouseResource

WRITER = """
import logging, sys
from ops_platform.resources.warehouse import WarehouseResource
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
warehouse = WarehouseResource(url=sys.argv[1], database=sys.argv[2])
with warehouse.client() as ch:
    ch.insert("hits", [[sys.argv[3]]] * 100, column_names=["who"])
print("done", flush=True)
"""


def test_two_processes_wait_for_the_directory_and_both_succeed(warehouse: WarehouseResource):
    with warehouse.client() as ch:
        ch.command("CREATE TABLE hits (who String) ENGINE = MergeTree ORDER BY who")
        writers = [subprocess.Popen([sys.executable, "-c", WRITER, warehouse.url, warehouse.database, name],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for name in ("first", "second")]
        for writer in writers:  # both are now blocked on the directory this process holds
            for line in writer.stderr:
                if WAITING_MESSAGE in line:
                    break
            else:
                raise AssertionError("the writer never waited for the lock")
    outputs = [w.communicate(timeout=120) for w in writers]
    assert [w.returncode for w in writers] == [0, 0], outputs
    with warehouse.client() as ch:
        assert dict(ch.query("SELECT who, count() FROM hits GROUP BY who").result_rows) == {"first": 100, "second": 100}


def test_warehouse_steps_share_one_pool_limited_to_one():
    assert {a.op.pool for a in WAREHOUSE_ASSETS} == {WAREHOUSE_POOL}
    settings = yaml.safe_load((Path(__file__).parent.parent / "dagster.yaml").read_text())
    settings.pop("storage")  # the test instance keeps its own storage
    with dg.instance_for_test(overrides=settings) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.run_retries_enabled and not instance.run_retries_retry_on_asset_or_op_failure
