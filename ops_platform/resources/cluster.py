"""How a warehouse table is laid out: the one place that decides between one ClickHouse node and a cluster.

Every statement that creates or changes a warehouse table is written once, for one node, and passes
through `WarehouseLayout.statements` on its way to ClickHouse:

- one node (OPS_WAREHOUSE_CLUSTER unset, chDB or a single server): the statement, unchanged;
- a cluster (OPS_WAREHOUSE_CLUSTER=<name in the servers' remote_servers>), the usual ClickHouse layout:
  each table `t` becomes `t_local`, a Replicated* MergeTree on every shard (Keeper path
  /clickhouse/tables/{shard}/{database}/{table}, replica {replica}: the servers' macros), with `t`, a
  Distributed table, in front. Reads and inserts keep naming `t`. Rows are sharded by a hash of the
  table's ORDER BY, which for a ReplacingMergeTree is its key, so every version and tombstone of a key
  lands on one shard and FINAL stays exact shard by shard. DDL runs ON CLUSTER; partition replaces and
  drops, and deletes, act on each shard's `t_local` (ON CLUSTER, executed once per shard by one replica).

The single-node statements are the ones the platform wrote before clusters existed, byte for byte
(tests/test_warehouse_cluster.py). Only the statement shapes the platform writes are translated; any other
raises ClusterUnsupported naming it, so a new shape cannot reach a cluster half-translated. Not run
against a real cluster here (none can be installed on these machines): the cluster statements are
checked by ClickHouse's own parser (formatQuery).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from ops_platform.settings import Settings, current

LOCAL = "_local"
REPLICA_ARGS = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
# Statements we write for one node. Names are plain identifiers, optionally in backquotes.
_NAME = r"`?(?P<{}>\w+)`?"
CREATE_RE = re.compile(r"CREATE TABLE (?P<if>IF NOT EXISTS )?" + _NAME.format("name")
                       + r"\s*(?P<body>\(.*\))\s*ENGINE = (?P<engine>\w*MergeTree)"
                       + r"(?:\((?P<args>[^()]*)\))?(?P<tail>.*)", re.S)
CREATE_AS_RE = re.compile(r"CREATE TABLE (?P<if>IF NOT EXISTS )?" + _NAME.format("name") + r" AS "
                          + _NAME.format("source"))
ALTER_RE = re.compile(r"ALTER TABLE " + _NAME.format("name") + r" (?P<action>.+)", re.S)
DELETE_RE = re.compile(r"DELETE FROM " + _NAME.format("name") + r" (?P<rest>WHERE .+)", re.S)
DROP_RE = re.compile(r"DROP TABLE (?:IF EXISTS )?" + _NAME.format("name"))
DATABASE_RE = re.compile(r"CREATE DATABASE IF NOT EXISTS (?P<name>`?\w+`?)")
ORDER_BY_RE = re.compile(r"ORDER BY (?:\((?P<list>[^()]*)\)|(?P<one>[\w`]+))")
PARTITION_ACTION = re.compile(r"(?:REPLACE|DROP|ATTACH) PARTITION ")
COLUMN_ACTION = re.compile(r"(?:ADD|MODIFY|RENAME|COMMENT|DROP) COLUMN ")


class ClusterUnsupported(ValueError):
    """A statement whose cluster form this layout does not know: it names the statement."""


@dataclass(frozen=True)
class WarehouseLayout:
    cluster: str | None = None   # None: one node

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> WarehouseLayout:
        """The layout OPS_WAREHOUSE_CLUSTER asks for (Settings.warehouse_cluster; this process's settings
        when not given)."""
        return cls((settings or current()).warehouse_cluster)

    def statements(self, sql: str, like: str | None = None) -> list[str]:
        """The statements that carry out `sql` (written for one node) on this layout, in order.

        `like`: for `CREATE TABLE s AS t`, t's own CREATE statement, whose engine the copy takes on a cluster
        (a Replicated table's Keeper path cannot be copied). Raises ClusterUnsupported.
        """
        if not self.cluster:
            return [sql]
        sql = sql.strip()
        on = f" ON CLUSTER `{self.cluster}`"
        if m := CREATE_RE.fullmatch(sql):
            local = m["name"] + LOCAL
            return [f"CREATE TABLE {m['if'] or ''}{local}{on} {m['body']}\n{self._engine(m)}",
                    self._front(m["name"], m["if"], sql)]
        if m := CREATE_AS_RE.fullmatch(sql):
            source = CREATE_RE.fullmatch((like or "").strip())
            if source is None or source["name"] != m["source"]:
                raise ClusterUnsupported(f"on a cluster, {sql!r} needs the CREATE statement of {m['source']} (like=)")
            local = m["name"] + LOCAL
            return [f"CREATE TABLE {m['if'] or ''}{local}{on} AS {m['source']}{LOCAL}\n{self._engine(source)}",
                    self._front(m["name"], m["if"], source.group(0))]
        if (m := ALTER_RE.fullmatch(sql)) and PARTITION_ACTION.match(m["action"]):
            action = re.sub(r" FROM " + _NAME.format("source") + "$", lambda f: f" FROM {f['source']}{LOCAL}",
                            m["action"])
            return [f"ALTER TABLE {m['name']}{LOCAL}{on} {action}"]
        if (m := ALTER_RE.fullmatch(sql)) and COLUMN_ACTION.match(m["action"]):
            return [f"ALTER TABLE {m['name']}{LOCAL}{on} {m['action']}", f"ALTER TABLE {m['name']}{on} {m['action']}"]
        if m := DELETE_RE.fullmatch(sql):
            return [f"DELETE FROM {m['name']}{LOCAL}{on} {m['rest']}"]
        if m := DROP_RE.fullmatch(sql):
            return [f"DROP TABLE IF EXISTS {m['name']}{on} SYNC", f"DROP TABLE IF EXISTS {m['name']}{LOCAL}{on} SYNC"]
        if m := DATABASE_RE.fullmatch(sql):
            return [f"CREATE DATABASE IF NOT EXISTS {m['name']}{on}"]
        raise ClusterUnsupported(f"no cluster form for this warehouse statement: {sql[:200]!r}")

    def parts(self, table: str) -> str:
        """What to read `table`'s parts from (the `_partition_id` virtual column is a part's, and a
        Distributed table has no parts): the table itself, or every shard's local table."""
        if not self.cluster:
            return table
        return f"cluster('{self.cluster}', currentDatabase(), '{table}{LOCAL}')"

    def session_settings(self) -> dict[str, int]:
        """Settings for every warehouse session: on a cluster, an INSERT into a Distributed table returns
        once every shard holds its rows (a partition replace reads its staging table right after)."""
        return {"distributed_foreground_insert": 1} if self.cluster else {}

    def _engine(self, m: re.Match) -> str:
        args = ", ".join(a for a in (REPLICA_ARGS, (m["args"] or "").strip()) if a)
        return f"ENGINE = Replicated{m['engine']}({args}){m['tail']}"

    def _front(self, name: str, if_not_exists: str | None, create: str) -> str:
        order = ORDER_BY_RE.search(create)
        if order is None:
            raise ClusterUnsupported(f"{name}: no ORDER BY to shard by in {create[:200]!r}")
        key = (order["list"] or order["one"]).strip()
        return (f"CREATE TABLE {if_not_exists or ''}{name} ON CLUSTER `{self.cluster}` AS {name}{LOCAL}\n"
                f"ENGINE = Distributed(`{self.cluster}`, currentDatabase(), {name}{LOCAL}, cityHash64({key}))")


def run_ddl(ch: Client, sql: str, like: str | None = None, **kwargs) -> None:
    """Carry out `sql` (written for one node) on the configured layout; kwargs go to Client.command."""
    for statement in WarehouseLayout.from_settings().statements(sql, like):
        ch.command(statement, **kwargs)


def parts(table: str) -> str:
    """WarehouseLayout.parts on the configured layout."""
    return WarehouseLayout.from_settings().parts(table)
