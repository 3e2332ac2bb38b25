"""Warm flow-run processes: every resume forks from a process that has Prefect and our flows loaded.

Each wait that is answered starts a new flow-run process (``python -m prefect.engine``), and on this
kind of machine importing Prefect and the flows costs about 2 of the 3 CPU-seconds such a process
uses; resumes are the unit of cost (measured: ``bench/`` and the README). So `serve` keeps one *warm
process* beside it that has imported them once, and each flow run is a fork of it:

- `serve`'s runner still starts one process per flow run — ``flow_run_launcher.py``, a few
  milliseconds of standard-library Python — which hands its environment, working directory and
  standard streams to the warm process and then stands for the engine: signals are forwarded, its
  exit status is the engine's, and killing it kills the engine (see that module);
- the warm process forks, the child takes the run's environment and settings and runs exactly
  what ``python -m prefect.engine`` runs; the run, its logs, states and crash handling are Prefect's;
- if the warm process is gone, the launcher starts the engine the ordinary way, so a broken warm
  process costs time, never a run.

The seam is the one Prefect's runner documents for replacing how its engine command is started
(``prefect.runner._starter_engine.run_process``); ``install`` checks it is there and otherwise leaves
Prefect's default in place, with a warning.

The warm process is a child of `serve` in its process group, so `make run`'s supervisor stops it
and every forked engine with `serve`'s group; it dies with `serve` (parent-death signal).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import NoReturn

log = logging.getLogger("aftersales.serve")

LAUNCHER = Path(__file__).with_name("flow_run_launcher.py")
ENGINE_COMMAND = ["-m", "prefect.engine"]
PR_SET_PDEATHSIG = 1


# --- in serve ------------------------------------------------------------------------------------


class WarmProcess:
    """The warm process of this `serve`: started on install, started again if it died."""

    def __init__(self, modules: list[str]) -> None:
        self.modules = modules
        self.socket_path = Path(tempfile.mkdtemp(prefix="aftersales-warm-")) / "flow-runs.sock"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        from prefect.settings import get_current_settings

        # the same environment the runner gives an engine, less what is per run
        env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True)}
        self.socket_path.unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "aftersales.deployments.warm_start", str(self.socket_path), *self.modules],
                                        env=env, stdin=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self.socket_path.exists()

    def command(self, command: list[str]) -> list[str]:
        """The launcher in front of Prefect's engine command, when the warm process is up."""
        if command[-2:] != ENGINE_COMMAND:
            return command
        if self.process is not None and self.process.poll() is not None:
            log.warning("the warm flow-run process ended (exit %s); starting it again", self.process.returncode)
            self.start()
        if not self.alive():
            return command  # (still) starting: this run starts the ordinary way
        return [sys.executable, "-S", str(LAUNCHER), str(self.socket_path), "--", *command]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def install(modules: list[str]) -> WarmProcess | None:
    """Start the warm process and route the runner's engine command through the launcher."""
    try:
        from prefect.runner import _starter_engine
    except ImportError:
        _starter_engine = None
    original = getattr(_starter_engine, "run_process", None)
    if original is None:
        log.warning("this Prefect has no engine-command seam (prefect.runner._starter_engine.run_process): "
                    "flow runs start cold, each importing Prefect and the flows")
        return None
    warm = WarmProcess(modules)
    warm.start()

    async def run_process(command, *args, **kwargs):
        return await original(warm.command(list(command)), *args, **kwargs)

    _starter_engine.run_process = run_process
    return warm


# --- the warm process ----------------------------------------------------------------------------


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _engine(conn: socket.socket, request: dict, fds: list[int]) -> NoReturn:
    """In the forked child: become ``python -m prefect.engine`` for the launcher's run."""
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the warm process's own; the engine installs Prefect's
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = [request["argv"][0]]

        def launcher_gone() -> None:  # the launcher is the flow run to the runner: die with it
            while True:
                try:
                    if not conn.recv(1):
                        break
                except InterruptedError:
                    continue
                except OSError:
                    break
            os.kill(os.getpid(), signal.SIGKILL)

        threading.Thread(target=launcher_gone, name="launcher-watch", daemon=True).start()

        import runpy

        import prefect.engine
        from prefect.context import SettingsContext, get_settings_context
        from prefect.settings import Settings

        # Prefect read its settings when the warm process imported it: read them again from the run's
        # environment, then run what `python -m prefect.engine` runs
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()):
            runpy.run_path(prefect.engine.__file__, run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
    # End as `python -m prefect.engine` ends: through the interpreter's shutdown, which joins the
    # run's threads and runs the exit hooks (Prefect sends its last log lines to the API there).
    sys.exit(code)


def complete_models() -> None:
    """Build every pydantic model whose build was deferred (most of Prefect's: about 260, 0.25
    CPU-seconds), so that runs forked from here do not each build the ones they use: the flow run
    and deployment read at start, the suspension observer, artifacts (py-spy: 2–3 % of a run)."""
    from pydantic import BaseModel

    def subclasses(model: type) -> list[type]:
        return [sub for direct in model.__subclasses__() for sub in (direct, *subclasses(direct))]

    for model in set(subclasses(BaseModel)):
        if not getattr(model, "__pydantic_complete__", True):
            try:
                model.model_rebuild()
            except Exception:  # noqa: BLE001 — a model that cannot be built yet is built on use, as without this
                continue


def serve_forks(socket_path: str, modules: list[str]) -> None:
    _die_with_parent()
    for name in ["prefect.engine", "prefect.flow_engine", *modules]:
        importlib.import_module(name)
    from aftersales.integrations import db, notify

    notify.preload()  # what the first message of each run would otherwise load
    db.preload()  # and its first query
    complete_models()
    if threading.active_count() != 1:
        # forking a process with threads can copy a held lock into the child: do not risk it
        print(f"warm flow-run process: importing started threads {threading.enumerate()}; not serving", file=sys.stderr)
        sys.exit(3)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    partial = socket_path + ".binding"
    listener.bind(partial)
    os.chmod(partial, 0o600)
    listener.listen(64)
    os.rename(partial, socket_path)  # the launcher sees the socket only once it accepts
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, tuple[int, socket.socket]] = {}  # pidfd → (pid, the launcher's connection)

    while True:
        for key, _events in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 3)
                    request = json.loads(message)
                    peer_uid = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[4:8]
                    if int.from_bytes(peer_uid, sys.byteorder) != os.getuid() or len(fds) != 3:
                        raise PermissionError("a flow-run request from another user")
                except (OSError, ValueError) as exc:
                    print(f"warm flow-run process: refused a request: {exc}", file=sys.stderr)
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    try:
                        selector.close()
                        listener.close()
                        for pidfd, (_pid, other) in children.items():
                            os.close(pidfd)
                            other.close()
                    except BaseException:
                        os._exit(1)
                    _engine(conn, request, fds)  # ends the child (SystemExit), never back into this loop
                for fd in fds:
                    os.close(fd)
                try:
                    conn.send(json.dumps({"pid": pid}).encode())
                except OSError:
                    pass  # the launcher is gone: the child notices and ends
                pidfd = os.pidfd_open(pid)
                children[pidfd] = (pid, conn)
                selector.register(pidfd, selectors.EVENT_READ)
            else:
                pidfd = key.fd
                pid, conn = children.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                try:
                    conn.send(json.dumps({"status": status}).encode())
                except OSError:
                    pass
                conn.close()


if __name__ == "__main__":
    serve_forks(sys.argv[1], sys.argv[2:])
