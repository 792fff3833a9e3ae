"""Go programs the project runs (Jaeger, grpcurl, buf, the benchmark's gateway), built from source.

Each lives in a small Go module of ours, `tools/go/<name>/` (or another folder named in MODULES),
whose go.mod lists the program with a `tool` directive and pins every dependency, go.sum
included. `go build` of that module's tools writes the binaries into the cache, in a folder
keyed by go.mod, go.sum and the Go version, so a second run builds nothing and a changed pin
builds anew. Go's own module and build caches hold the downloads.

    python -m tools.gotools grpcurl           # builds if needed; prints the binary's path
    python -m tools.gotools --all             # every program (what CI warms)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

from tools.cache import building, cache_root

ROOT = pathlib.Path(__file__).resolve().parent.parent
# program -> the module folder that pins it (its go.mod names the program in a `tool` line)
MODULES = {
    "jaeger": ROOT / "tools" / "go" / "jaeger",
    "grpcurl": ROOT / "tools" / "go" / "grpcurl",
    "buf": ROOT / "tools" / "go" / "buf",
    # protoc plugins for the benchmark's gateway (tools/gateway.py); the same go.mod pins the gateway's libraries
    "protoc-gen-go": ROOT / "bench" / "gateway",
    "protoc-gen-go-grpc": ROOT / "bench" / "gateway",
    "protoc-gen-grpc-gateway": ROOT / "bench" / "gateway",
}
# What `version` prints, set as each project's own release build sets it (Jaeger's module tag v1.76.0 is
# Jaeger v2.13.0; grpcurl's goreleaser sets main.version).
_LDFLAGS = {"jaeger": "-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v2.13.0",
            "grpcurl": "-X main.version=v1.9.3"}


def _tools(module: pathlib.Path) -> list[str]:
    """The packages of the module's `tool` directives (single lines or a block)."""
    packages, in_block = [], False
    for line in (module / "go.mod").read_text().splitlines():
        words = line.split("//")[0].split()
        if words[:2] == ["tool", "("]:
            in_block = True
        elif in_block and words == [")"]:
            in_block = False
        elif in_block and words:
            packages.append(words[0])
        elif len(words) == 2 and words[0] == "tool":
            packages.append(words[1])
    return packages


def go_version() -> str:
    """The Go toolchain's version (part of every cache key); a clear error when there is no `go`."""
    if shutil.which("go") is None:
        raise SystemExit("`go` is not on PATH: the pinned Go programs (tools/go/*/go.mod) are built from source; "
                         "install Go 1.21 or newer (it fetches the toolchain version each go.mod asks for)")
    return subprocess.run(["go", "env", "GOVERSION"], check=True, capture_output=True, text=True).stdout.strip()


def _ldflags(module: pathlib.Path) -> str:
    return " ".join(["-s -w", *(_LDFLAGS[name] for name, path in MODULES.items() if path == module and name in _LDFLAGS)])


def _key(module: pathlib.Path) -> str:
    digest = hashlib.sha256(go_version().encode())
    for name in ("go.mod", "go.sum"):
        digest.update((module / name).read_bytes())
    digest.update(_ldflags(module).encode())
    return digest.hexdigest()[:12]


def build_module(module: pathlib.Path) -> pathlib.Path:
    """Builds every tool of `module` (once per pin); returns the folder holding the binaries."""
    entry = cache_root() / "go" / f"{module.name}-{_key(module)}"
    with building(entry) as scratch:
        if scratch is not None:
            print(f"building {', '.join(_tools(module))} (once; kept in {entry})", file=sys.stderr, flush=True)
            env = {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0"), "GOFLAGS": "-mod=readonly"}
            subprocess.run(["go", "build", "-trimpath", f"-ldflags={_ldflags(module)}", "-o", str(scratch), *_tools(module)],
                           cwd=module, env=env, check=True)
    return entry


def ensure(program: str) -> pathlib.Path:
    """The path of a built, pinned program from MODULES."""
    binary = build_module(MODULES[program]) / program
    if not binary.exists():
        raise RuntimeError(f"{MODULES[program]}/go.mod builds no program named {program}")
    return binary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("programs", nargs="*", choices=[*MODULES, []], metavar="program",
                        help=f"one of {', '.join(MODULES)}")
    parser.add_argument("--all", action="store_true", help="build every program")
    args = parser.parse_args()
    for program in MODULES if args.all else args.programs:
        print(ensure(program))
    return 0


if __name__ == "__main__":
    sys.exit(main())
