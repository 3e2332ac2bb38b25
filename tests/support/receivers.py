"""Real local endpoints for tests: an HTTP receiver that records JSON POSTs, an SMTP receiver.

They stand in for the outside world (a staff chat webhook, the sandbox platform's inbox, a mail
server) so notifications are tested over real sockets, through Apprise, not through mocks.

    base_url, records, stop = start_http_receiver()
    ...  # send to f"{base_url}/some/path"
    assert records[0].path == "/some/path" and records[0].json["title"] == "..."
    stop()
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


def free_port() -> int:
    """A TCP port nobody listens on right now (for a channel that is down, or up later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- HTTP ----------------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None  # the parsed body when it is JSON


def start_http_receiver(
    port: int | None = None, status: int = 200
) -> tuple[str, list[ReceivedRequest], Callable[[], None]]:
    """Serve 127.0.0.1 in a thread; every request is recorded and answered with ``status``.

    Returns ``(base_url, records, stop)``. ``port`` lets a test bring a channel up on the port
    it was down on before.
    """
    records: list[ReceivedRequest] = []
    lock = threading.Lock()

    class Recorder(BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            request = ReceivedRequest(
                method=self.command, path=path, query=query, headers=dict(self.headers.items()),
                body=body, json=_json_or_none(body),
            )
            with lock:
                records.append(request)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_POST = do_PUT = do_GET = _record

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port or 0), Recorder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="http-receiver", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return f"http://127.0.0.1:{server.server_address[1]}", records, stop


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8")) if body else None
    except ValueError:
        return None


# --- SMTP ----------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage = field(repr=False)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        """The plain-text body (or the HTML one when there is no plain part)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""


def start_smtp_receiver(
    port: int | None = None,
) -> tuple[str, list[ReceivedMail], Callable[[], None]]:
    """An SMTP server on 127.0.0.1 (aiosmtpd, no TLS, no auth) that keeps every mail.

    Returns ``("127.0.0.1:<port>", mails, stop)``.
    """
    from aiosmtpd.controller import Controller

    mails: list[ReceivedMail] = []

    class Keeper:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            mails.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            return "250 Message accepted for delivery"

    # aiosmtpd checks readiness by connecting to the given port, so it cannot take port 0.
    port = port or free_port()
    controller = Controller(Keeper(), hostname="127.0.0.1", port=port)
    controller.start()
    return f"127.0.0.1:{port}", mails, controller.stop
