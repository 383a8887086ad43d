"""The `ops api` app served for real by uvicorn on 127.0.0.1 (a free port), in a thread, while a `with` runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from helpers import free_port, wait_for
from ops_platform.api.app import create_app
from ops_platform.api.settings import ApiSettings


@contextmanager
def serving(postgres, settings: ApiSettings) -> Iterator[str]:
    """Yield the base URL of the app over `postgres` with `settings`; the server stops on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(postgres, settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, "uvicorn to start", timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
