"""Run the sandbox shop platform with uvicorn in a background thread on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from sandbox_platform.app import create_app


def start_sandbox(api_key: str, **app_options: Any) -> tuple[str, FastAPI, Callable[[], None]]:
    """Start the sandbox; returns ``(base_url, app, stop)``. ``app.state.shop`` is its state.

    ``app_options`` go to ``create_app`` (``seed``, ``now``, ``carrier_customer``, ``carrier_key``,
    ``top_app_key``, ``top_app_secret``, ``top_session_key``).
    """
    app = create_app(api_key, **app_options)
    # bind the socket ourselves: the port is known before uvicorn starts, and nothing can take it
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"sandbox-{port}")
    thread.start()
    _wait_until_started(server, thread)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return f"http://127.0.0.1:{port}", app, stop


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the sandbox server thread died while starting")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox server did not start within {timeout} s")
        time.sleep(0.01)
