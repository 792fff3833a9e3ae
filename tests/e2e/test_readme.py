"""The README runs as written: every shell block, in order, in one shell, against `make up`.

`make up` runs in a scratch copy of the repository (its tracked files, with this checkout's .venv),
so the walk-through's relative paths (.dev/pki/ca.pem, bin/grpcurl) are its own and this checkout's
.dev is left alone. The only edits are the ports, which the test picks free (the README's defaults
may be taken on a shared machine). A `curl` that gets an HTTP error, a `grpcurl` that gets a gRPC
error, or any other failing command fails the test.

Not run: the block of the make commands themselves (this test is their `make up`; `make test` is
the suite it belongs to) and the Docker Compose block (tools/containers runs the stack in
containers and walks the README's calls through it).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from tools.ports import free_ports

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKIPPED = {
    "make up": "the block of make commands: this test is their make up",
    "docker compose": "the containers: tools/containers runs them",
}


def shell_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", markdown, flags=re.S | re.M)


def _copy_repository(to: pathlib.Path) -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, tracked.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (to / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, to / name)
    (to / ".venv").symlink_to(ROOT / ".venv")
    # The venv is this checkout's: its install stamp must stay newer than the copied lock file, or
    # the copy's `make up` reinstalls and points the venv's import path at the copy.
    for stamp in (ROOT / ".venv").glob(".installed-*"):
        stamp.touch()


class MakeUp:
    """`make up` in `directory` on free ports, until stop()."""

    def __init__(self, directory: pathlib.Path):
        names = ["EDGE_PORT", "ACCOUNTS_PORT", "CATALOG_PORT", "ORDERS_PORT", "EDGE_METRICS_PORT",
                 "ACCOUNTS_METRICS_PORT", "CATALOG_METRICS_PORT", "ORDERS_METRICS_PORT"]
        self.ports = {name: str(port) for name, port in zip(names, free_ports(len(names)), strict=True)}
        env = {**os.environ, **self.ports, "JAEGER": "off"}
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.output: list[str] = []
        self._up = threading.Event()
        self.process = subprocess.Popen(["make", "up"], cwd=directory, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._up.wait(180) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("make up did not come up:\n" + "".join(self.output[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("Shop is up"):
                self._up.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # make and the stack it started, which it stops in turn
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


@pytest.fixture(scope="module")
def made_up(tmp_path_factory):
    directory = tmp_path_factory.mktemp("readme") / "shop"
    _copy_repository(directory)
    running = MakeUp(directory)
    yield directory, running
    running.stop()


def test_every_shell_block_of_the_readme_runs_against_make_up(made_up):
    directory, running = made_up
    blocks = shell_blocks((directory / "README.md").read_text())
    assert len(blocks) >= 6, "the README's shell blocks were not found"
    script = ["set -euo pipefail",
              # Any HTTP error fails the script, with the server's problem+json shown.
              "curl() { command curl --fail-with-body \"$@\"; }"]
    run = 0
    for number, block in enumerate(blocks, 1):
        skipped = next((why for start, why in SKIPPED.items() if block.lstrip().startswith(start)), None)
        if skipped:
            continue
        block = (block.replace("127.0.0.1:8080", f"127.0.0.1:{running.ports['EDGE_PORT']}")
                      .replace("127.0.0.1:50051", f"127.0.0.1:{running.ports['ACCOUNTS_PORT']}"))
        script += [f"echo '--- README shell block {number}'", block]
        run += 1
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=directory, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "PATH": f"{directory / 'bin'}:{os.environ['PATH']}"})
    assert result.returncode == 0, (f"a README command failed (exit {result.returncode}):\n"
                                    f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    assert run >= 5 and "--- README shell block" in result.stdout
    # What the walk-through did, seen from the outside: the order it placed was cancelled.
    assert '"status":"CANCELLED"' in result.stdout.replace(" ", ""), result.stdout[-2000:]
    print(f"{run} README blocks ran in {time.monotonic() - started:.1f}s")
