"""Ending a child process this program started: by its PID, politely first."""

from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
    """Sends `sig` to the child (by its PID) unless it has exited, waits up to `timeout` seconds,
    then kills it; returns its exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
