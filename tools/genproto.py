"""Regenerates the Python messages and gRPC stubs from proto/ into gen/.

    python -m tools.genproto            # write gen/
    python -m tools.genproto --check    # exit 1 if gen/ differs from what proto/ produces

gen/ is committed so that a checkout imports without a build step; --check in CI
keeps it honest.
"""

import argparse
import filecmp
import pathlib
import re
import shutil
import sys
import tempfile

import grpc_tools
from grpc_tools import protoc

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_PROTO_DIR = _ROOT / "proto"
_GEN_DIR = _ROOT / "gen"
DESCRIPTOR_SET = "descriptors.binpb"
_IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)


def include_dirs() -> list[pathlib.Path]:
    """proto/, protobuf's well-known types, and google/api from googleapis-common-protos."""
    import google.api

    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    googleapis = pathlib.Path(google.api.__path__[0]).parent.parent
    return [_PROTO_DIR, well_known, googleapis]


def sources() -> list[str]:
    """Every .proto under proto/, by import name."""
    return sorted(str(p.relative_to(_PROTO_DIR)) for p in _PROTO_DIR.rglob("*.proto"))


def imported_files(names: list[str]) -> dict[str, pathlib.Path]:
    """The named .proto files and everything they import, transitively: import name -> the file
    protoc reads for it (the first include dir that has it)."""
    found: dict[str, pathlib.Path] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = next((d / name for d in include_dirs() if (d / name).is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{name} is in none of {', '.join(map(str, include_dirs()))}")
        found[name] = path
        pending += _IMPORT.findall(path.read_text())
    return found


def generate(out_dir: pathlib.Path) -> None:
    """Compiles every .proto under proto/ into out_dir (messages, stubs and .pyi type hints)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *(f"-I{d}" for d in include_dirs())]
    args += [f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
             # The same files with their comments, for the OpenAPI document's descriptions (edge/openapi.py).
             f"--descriptor_set_out={out_dir / DESCRIPTOR_SET}", "--include_source_info", *sources()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def _tree(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    return {str(p.relative_to(directory)): p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def check() -> int:
    """Returns 0 when gen/ is exactly what proto/ produces, 1 otherwise (and names the stale files)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh_dir = pathlib.Path(tmp)
        generate(fresh_dir)
        fresh, current = _tree(fresh_dir), _tree(_GEN_DIR)
        stale = sorted(n for n in fresh.keys() | current.keys()
                       if n not in fresh or n not in current or not filecmp.cmp(fresh[n], current[n], shallow=False))
    for name in stale:
        print(f"stale generated file: gen/{name}", file=sys.stderr)
    if stale:
        print("run `make proto` and commit gen/", file=sys.stderr)
    return 1 if stale else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if gen/ is stale instead of writing it")
    if parser.parse_args().check:
        return check()
    shutil.rmtree(_GEN_DIR, ignore_errors=True)
    generate(_GEN_DIR)
    print(f"generated {len(_tree(_GEN_DIR))} files in gen/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
