"""Postgres COPY text → ClickHouse TabSeparated, with reading and inserting at the same time.

One INSERT consumes the output of one or more COPY streams (key ranges of the same rows), each read
by its own thread on its own Postgres session. The stages overlap instead of taking turns: Postgres
formats rows while ClickHouse parses the previous chunk. Memory stays at a few chunks.

- chDB (embedded): the INSERT reads a named pipe (`FROM INFILE`) that the reader threads write to.
- ClickHouse over HTTP: the INSERT body is a generator fed by the reader threads.

The readers use libpq's COPY calls directly (psycopg.pq): psycopg's row iterator costs about three
times as much Python time per row, and Python time is what the two cores are short of. Rows are
counted by newline: COPY text escapes newlines inside values, so each raw newline ends one row.
"""

from __future__ import annotations

import os
import queue
import select
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
from clickhouse_connect.driver.client import Client
from psycopg import ClientCursor, pq

from ops_platform.resources.postgres import PostgresResource

CHUNK_BYTES = 4 * 1024 * 1024
# Physical order, no parallel workers: a repeated window of unchanged rows is sent in the same order
# (so ClickHouse's insert deduplication can drop it), and our own streams are the parallelism.
SESSION_SETTINGS = ("SET TIME ZONE 'UTC'", "SET DateStyle = 'ISO'", "SET max_parallel_workers_per_gather = 0", "SET synchronize_seqscans = off")
COPY_SQL = "COPY ({query}) TO STDOUT"  # query: the SELECT with its parameters bound (ClientCursor.mogrify)
INSERT_FROM_FIFO_SQL = "INSERT INTO {target} ({names}) FROM INFILE '{path}' FORMAT TabSeparated"


class _Stopped(Exception):
    """The consumer has gone (failed or finished early): readers stop quietly."""


def copy_streams(ch: Client, target: str, columns: list[str], postgres: PostgresResource,
                 queries: list[tuple[str, dict]], settings: dict) -> int:
    """Stream every query's rows into ClickHouse table `target` with one INSERT; return the row count.

    If any reader fails, the error is raised after the INSERT has ended: callers must not treat
    what was inserted as complete (replace_partitions discards its staging table; an incremental
    run keeps its window pending and repeats it).
    """
    embedded = ch.__class__.__name__.lower().startswith("chdb")
    sink = _PipeSink(len(queries)) if embedded else _QueueSink(len(queries))
    counts = [0] * len(queries)
    errors: list[BaseException] = []

    def read(i: int, query: str, params: dict) -> None:
        try:
            counts[i] = read_copy(postgres, query, params, sink.write)
        except _Stopped:
            pass
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(err)
            sink.stop()
        finally:
            sink.reader_done()

    readers = [threading.Thread(target=read, args=(i, q, p), name=f"copy-{target}-{i}", daemon=True)
               for i, (q, p) in enumerate(queries)]
    with sink.open():
        for reader in readers:
            reader.start()
        try:
            sink.insert(ch, target, columns, settings)
        finally:
            sink.stop()
            sink.release(readers)
            for reader in readers:
                reader.join()
    if errors:
        raise errors[0]
    return sum(counts)


def read_copy(postgres: PostgresResource, query: str, params: dict, write: Callable[[bytearray], None]) -> int:
    rows = 0
    with postgres.raw() as conn:
        for statement in SESSION_SETTINGS:
            conn.execute(statement)
        with ClientCursor(conn) as cur:
            sql = COPY_SQL.format(query=cur.mogrify(query, params))
        pgconn = conn.pgconn
        pgconn.send_query(sql.encode())
        result = pgconn.get_result()
        if result.status != pq.ExecStatus.COPY_OUT:
            _drain(pgconn)
            raise psycopg.DatabaseError(_message(result, pgconn))
        buffer = bytearray()
        try:
            while True:
                size, data = pgconn.get_copy_data(1)  # non-blocking: waiting happens in select, without the GIL
                if size > 0:
                    buffer += data
                    if len(buffer) >= CHUNK_BYTES:
                        rows += buffer.count(b"\n")
                        write(buffer)
                        buffer = bytearray()
                elif size == 0:
                    _wait_readable(pgconn.socket)
                    pgconn.consume_input()
                else:
                    break
        except _Stopped:
            pgconn.cancel_conn().cancel()
            _drain(pgconn)
            raise
        end = pgconn.get_result()
        _drain(pgconn)
        if size == -2 or end is None or end.status != pq.ExecStatus.COMMAND_OK:
            raise psycopg.DatabaseError(_message(end, pgconn))  # e.g. an error half way: the stream is incomplete
        if buffer:
            rows += buffer.count(b"\n")
            write(buffer)
    return rows


def _drain(pgconn) -> None:
    while pgconn.get_result() is not None:
        pass


def _message(result, pgconn) -> str:
    raw = (result.error_message if result is not None else b"") or pgconn.error_message or b"COPY failed"
    return raw.decode(errors="replace").strip()


class _PipeSink:
    """chDB reads `INSERT ... FROM INFILE '<fifo>'` while reader threads write whole chunks to the fifo."""

    def __init__(self, readers: int) -> None:
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._readers_left = readers
        self._fd: int | None = None

    @contextmanager
    def open(self) -> Iterator[None]:
        with tempfile.TemporaryDirectory(prefix="ops-sync-") as directory:
            self.path = os.path.join(directory, "rows.tsv")
            os.mkfifo(self.path, 0o600)
            yield

    def insert(self, ch: Client, target: str, columns: list[str], settings: dict) -> None:
        names = ", ".join(f"`{c}`" for c in columns)
        ch.command(INSERT_FROM_FIFO_SQL.format(target=target, names=names, path=self.path), settings=settings)

    def _writer(self) -> int:
        # Opening a fifo for writing waits for its reader (chDB, or release() below); one thread does it, under the lock.
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY)
        return self._fd

    def write(self, chunk: bytearray) -> None:
        with self._lock:
            if self._stopped.is_set():
                raise _Stopped
            fd = self._writer()
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(fd, view):]
            except BrokenPipeError:
                raise _Stopped from None  # chDB stopped reading: its own error is what the caller sees

    def reader_done(self) -> None:
        """The last reader ends the data (even after a failure: the INSERT must end before the error is raised)."""
        with self._lock:
            self._readers_left -= 1
            if self._readers_left == 0:
                os.close(self._writer())
                self._fd = None

    def stop(self) -> None:
        self._stopped.set()

    def release(self, readers: list[threading.Thread]) -> None:
        """After the INSERT: if it ended before reading everything, a reader may still wait on the fifo; read it empty."""
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            while any(r.is_alive() for r in readers):
                if _wait_readable(fd, timeout_ms=50):
                    os.read(fd, 1 << 20)
        finally:
            os.close(fd)


def _wait_readable(fd: int, timeout_ms: int | None = None) -> bool:
    """poll(), not select(): select() cannot watch a descriptor numbered 1024 or more, which a
    long-lived process (a Dagster worker, a test session) reaches."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


class _QueueSink:
    """ClickHouse over HTTP: one INSERT whose body is a generator of the readers' chunks (chunked transfer)."""

    def __init__(self, readers: int) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=2 * readers)
        self._stopped = threading.Event()
        self._readers = readers

    @contextmanager
    def open(self) -> Iterator[None]:
        yield

    def write(self, chunk: bytearray) -> None:
        while True:
            if self._stopped.is_set():
                raise _Stopped
            try:
                self._queue.put(bytes(chunk), timeout=0.1)
                return
            except queue.Full:
                continue

    def reader_done(self) -> None:
        self._queue.put(None)

    def insert(self, ch: Client, target: str, columns: list[str], settings: dict) -> None:
        def body() -> Iterator[bytes]:
            finished = 0
            while finished < self._readers:
                chunk = self._queue.get()
                if chunk is None:
                    finished += 1
                elif not self._stopped.is_set():
                    yield chunk
        ch.raw_insert(target, columns, insert_block=body(), fmt="TabSeparated", settings=settings)

    def stop(self) -> None:
        self._stopped.set()

    def release(self, readers: list[threading.Thread]) -> None:
        while any(r.is_alive() for r in readers):
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
