"""The shop's workloads: services/workloads.toml, or the file the WORKLOADS_FILE setting names (how a
test runs a stack with one more service)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping

from runtime.workloads import Registry, load

FILE = pathlib.Path(__file__).with_name("workloads.toml")


def registry(environ: Mapping[str, str] | None = None) -> Registry:
    environ = os.environ if environ is None else environ
    return load(pathlib.Path(environ.get("WORKLOADS_FILE") or FILE))
