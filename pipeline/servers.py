"""Starting a real server on the loopback interface and waiting until it answers (benchmarks, tests)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

from pipeline.errors import PipelineError


class ServerError(PipelineError):
    """A server that exited or never answered; the message carries the end of its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Returns once ``url`` answers; raises if ``process`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"{process.args[0]} exited with {process.returncode}: "
                              f"{process.stdout.read()[-2000:] if process.stdout else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise ServerError(f"{url} did not answer within {timeout:g} s")


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], ready_url: str, timeout: float = 120.0
            ) -> Iterator[subprocess.Popen]:
    """Runs ``command`` in its own session until the block ends; the block starts once ``ready_url`` answers."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        wait_for(ready_url, process, timeout)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
