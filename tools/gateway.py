"""The benchmark's Go grpc-gateway (bench/gateway), generated from our protos and built into the cache.

    python -m tools.gateway            # builds if needed; prints the binary's path
    python -m tools.gateway --tidy     # after changing a pin or an import of bench/gateway: go mod tidy

grpcio-tools' protoc runs protoc-gen-go, protoc-gen-go-grpc and protoc-gen-grpc-gateway (pinned by
bench/gateway/go.mod's tool lines and built by tools.gotools) over shop/accounts/v1/accounts.proto and
the files of proto/ it imports; the Go code goes into a copy of the module next to its own .go files,
and `go build` makes `accounts-gateway`. The cache entry is keyed by everything that goes in: the
.proto files read (ours and google's), the module's .go files, go.mod, go.sum, and the versions of
protoc and Go; it keeps the generated code (src/) for reading. Generated Go code is never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from tools import gotools
from tools.cache import building, cache_root
from tools.genproto import imported_files, include_dirs

MODULE = gotools.ROOT / "bench" / "gateway"
SERVICE_PROTO = "shop/accounts/v1/accounts.proto"
PROGRAM = "accounts-gateway"
_PLUGINS = {"go": "protoc-gen-go", "go-grpc": "protoc-gen-go-grpc", "grpc-gateway": "protoc-gen-grpc-gateway"}


def _module_path() -> str:
    return next(line.split()[1] for line in (MODULE / "go.mod").read_text().splitlines() if line.startswith("module "))


def _ours(inputs: dict[str, pathlib.Path]) -> list[str]:
    """The inputs from proto/ (they need Go code generated; google's come with their Go modules)."""
    return sorted(name for name, path in inputs.items() if path.is_relative_to(gotools.ROOT / "proto"))


def _go_package(name: str) -> str:
    """M option for one of our files: shop/accounts/v1/accounts.proto -> <module>/gen/shop/accounts/v1;accountsv1."""
    directory = pathlib.PurePosixPath(name).parent
    return f"M{name}={_module_path()}/gen/{directory};{''.join(directory.parts[-2:])}"


def _key(inputs: dict[str, pathlib.Path]) -> str:
    digest = hashlib.sha256(gotools.go_version().encode())
    digest.update(importlib.metadata.version("grpcio-tools").encode())
    files = [*(MODULE / name for name in ("go.mod", "go.sum")), *sorted(MODULE.glob("*.go"))]
    for label, path in [*((p.name, p) for p in files), *sorted(inputs.items())]:
        digest.update(f"{label}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def generate(src: pathlib.Path, inputs: dict[str, pathlib.Path]) -> None:
    """A copy of the module in `src`, with the Go code of our protos under src/gen/."""
    shutil.copytree(MODULE, src, ignore=shutil.ignore_patterns("gen"))
    (src / "gen").mkdir()
    ours = _ours(inputs)
    options = ",".join(["paths=source_relative", *map(_go_package, ours)])
    args = [sys.executable, "-m", "grpc_tools.protoc", *(f"-I{d}" for d in include_dirs())]
    for out, plugin in _PLUGINS.items():
        args += [f"--plugin={plugin}={gotools.ensure(plugin)}", f"--{out}_out={src / 'gen'}", f"--{out}_opt={options}"]
    subprocess.run([*args, *ours], check=True)


def _go_env() -> dict[str, str]:
    return {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0"), "GOFLAGS": "-mod=readonly"}


def ensure() -> pathlib.Path:
    """The path of the gateway binary built from the current protos, main.go and pins."""
    inputs = imported_files([SERVICE_PROTO])
    entry = cache_root() / "go" / f"{PROGRAM}-{_key(inputs)}"
    with building(entry) as scratch:
        if scratch is not None:
            print(f"building {PROGRAM} from {SERVICE_PROTO} (once; kept in {entry})", file=sys.stderr, flush=True)
            generate(scratch / "src", inputs)
            subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(scratch / PROGRAM), "."],
                           cwd=scratch / "src", env=_go_env(), check=True)
    return entry / PROGRAM


def tidy() -> None:
    """go mod tidy with the generated code in place (it imports what main.go's imports need), then
    go.mod and go.sum copied back into bench/gateway."""
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "src"
        generate(src, imported_files([SERVICE_PROTO]))
        subprocess.run(["go", "mod", "tidy"], cwd=src, check=True, env={**os.environ, "GOFLAGS": ""})
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(src / name, MODULE / name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tidy", action="store_true", help="go mod tidy bench/gateway with its generated code in place")
    if parser.parse_args().tidy:
        tidy()
        return 0
    print(ensure())
    return 0


if __name__ == "__main__":
    sys.exit(main())
