"""What `serve` starts for a flow run: asks the warm process for a forked engine, or runs it itself.

Started as ``python -S flow_run_launcher.py <socket> -- python -m prefect.engine`` (standard library
only, no site: it starts in milliseconds). It hands its environment, working directory and standard
streams to the warm process (``warm_start.py``), which forks a copy of itself that has Prefect and
our flows imported already and runs the engine there. To the runner this process *is* the flow
run: its signals go to the engine, it ends when the engine ends and with the engine's exit status
(killed by a signal → killed by the same signal). When it is killed (``kill -9``) the engine notices
the closed socket and kills itself, as the runner expects of a dead flow-run process. Without a warm
process it becomes the plain ``python -m prefect.engine`` (exec), as Prefect starts it by default.
"""

import json
import os
import signal
import socket
import sys
import time


def main() -> None:
    socket_path, separator, *engine = sys.argv[1:]
    assert separator == "--" and engine, "usage: flow_run_launcher.py <socket> -- <engine command>"
    try:
        warm = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        warm.connect(socket_path)
        request = {"env": dict(os.environ), "cwd": os.getcwd(), "argv": engine}
        socket.send_fds(warm, [json.dumps(request).encode()], [0, 1, 2])
        pid = json.loads(warm.recv(65536))["pid"]
    except (OSError, ValueError, KeyError):
        os.execvp(engine[0], engine)  # no warm process: start the engine the ordinary way (a worker's is `python …`)

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, forward)

    reply = warm.recv(65536)
    if not reply:  # the warm process died first: the engine's end is not ours to read, wait for it
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(0.2)
        sys.exit(1)
    status = json.loads(reply)["status"]
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
