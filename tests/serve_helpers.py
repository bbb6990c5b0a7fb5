"""A real ``edgeship serve`` process on a free loopback port, for tests and benchmarks.

Every server started here stops by itself: SIGTERM on exit, SIGKILL if it does not
exit within the deadline, and the process is given a hard lifetime with ``timeout``.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


class ServerProcess:
    """``edgeship serve ARGS --port 0 --log-file LOG``; the port is read from the log's "listening" line."""

    def __init__(self, args: list[str], log: Path, *, lifetime_s: int = 300, env: dict[str, str] | None = None,
                 nofile: int | None = None):
        """``nofile``: the server's file-descriptor limit, soft and hard (it cannot raise it)."""
        self.log = log
        cmd = [sys.executable, "-m", "edgeship", "serve", *args, "--host", HOST, "--port", "0", "--log-file", str(log)]
        if sys.platform.startswith("linux"):
            cmd = ["timeout", "-s", "KILL", str(lifetime_s), *cmd]  # the server cannot outlive a stuck test
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})}, start_new_session=True,
                                     preexec_fn=None if nofile is None else functools.partial(_limit_fds, nofile))
        self.port = self._wait_listening(deadline_s=90)
        self.url = f"{HOST}:{self.port}"

    def _wait_listening(self, deadline_s: float) -> int:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            for line in self.lines():
                if line.get("event") == "listening":
                    return int(line["port"])
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgeship serve exited {self.proc.returncode}: {self.proc.stderr.read()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("edgeship serve did not start listening in time")

    def lines(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        out = []
        for raw in self.log.read_text().splitlines():
            if raw.strip():
                out.append(json.loads(raw))
        return out

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid if not _wrapped(self.proc) else _child_pid(self.proc.pid), sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc.poll() is None:
            try:
                self.signal(signal.SIGTERM)
                return self.proc.wait(timeout)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
            finally:
                if self.proc.poll() is None:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(5)
        return self.proc.returncode

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _limit_fds(n: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))


def _wrapped(proc: subprocess.Popen[str]) -> bool:
    return isinstance(proc.args, list) and proc.args[0] == "timeout"


def _child_pid(pid: int) -> int:
    """The server under ``timeout``: signals go to it, not to the timeout wrapper."""
    import psutil

    for _ in range(100):
        children = psutil.Process(pid).children()
        if children:
            return children[0].pid
        time.sleep(0.02)
    return pid
