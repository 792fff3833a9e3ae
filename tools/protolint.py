"""buf lint and buf breaking over proto/, offline, with the pinned buf (tools/go/buf).

    python -m tools.protolint                    # lint, then breaking against HEAD~1 (what `make lint` runs)
    python -m tools.protolint --against main     # breaking against another commit
    python -m tools.protolint --against ""       # lint only

buf.yaml's workspace has two modules: proto/ and .cache/buf/googleapis, the google/api files our
protos import, copied here (outside git) from the venv's googleapis-common-protos. For `buf breaking`
the tree at the other commit is laid out the same way in a scratch folder, from `git archive <commit>
proto`: a `.git#ref=` input would lack google/api, which is not in git. Both sides use today's
buf.yaml. When the clone lacks that commit (shallow, or HEAD~1 of a first commit) the check is
skipped, and says so; a commit name that does not resolve otherwise is an error.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

from tools import gotools
from tools.genproto import imported_files, sources

ROOT = gotools.ROOT
THIRD_PARTY = pathlib.PurePath(".cache", "buf", "googleapis")  # a module path in buf.yaml


def write_third_party(workspace: pathlib.Path) -> None:
    """The files proto/ imports from outside it, google/protobuf aside (buf has those built in)."""
    target = workspace / THIRD_PARTY
    shutil.rmtree(target, ignore_errors=True)
    for name, path in imported_files(sources()).items():
        if not path.is_relative_to(ROOT / "proto") and not name.startswith("google/protobuf/"):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / name)


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True)


def breaking(buf: pathlib.Path, ref: str) -> int:
    """buf breaking of proto/ against its state at `ref`; 0 when compatible, or when `ref` is beyond a
    shallow clone's or a first commit's history (said on stderr)."""
    commit = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").stdout.decode().strip()
    if not commit:
        if _git("rev-parse", "--is-shallow-repository").stdout.decode().strip() == "true":
            print(f"buf breaking skipped: {ref} is not in this shallow clone (git fetch --deepen=1 brings "
                  "the previous commit)", file=sys.stderr)
            return 0
        if ref.startswith("HEAD"):
            print(f"buf breaking skipped: {ref} does not exist: the history is shorter (a first commit has no HEAD~1)", file=sys.stderr)
            return 0
        print(f"buf breaking: no commit named {ref}", file=sys.stderr)
        return 2
    archive = _git("archive", "--format=tar", commit, "proto")
    if archive.returncode != 0:
        print(f"buf breaking skipped: {ref} ({commit[:12]}) has no proto/", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        previous = pathlib.Path(tmp)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(previous, filter="data")
        shutil.copyfile(ROOT / "buf.yaml", previous / "buf.yaml")
        write_third_party(previous)
        result = subprocess.run([str(buf), "breaking", "--against", str(previous)], cwd=ROOT)
    if result.returncode == 0:
        print(f"buf breaking: proto/ is compatible with {ref} ({commit[:12]})")
    else:
        print(f"buf breaking: proto/ breaks the contract of {ref} ({commit[:12]}): give the change a new "
              "field number or name, or a new package version (v2) instead", file=sys.stderr)
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1", help='commit for buf breaking (default HEAD~1; "" skips it)')
    args = parser.parse_args()
    buf = gotools.ensure("buf")
    write_third_party(ROOT)
    linted = subprocess.run([str(buf), "lint"], cwd=ROOT).returncode
    if linted == 0:
        print("buf lint: proto/ passes STANDARD (with buf.yaml's exceptions)")
    broken = breaking(buf, args.against) if args.against else 0
    return linted or broken


if __name__ == "__main__":
    sys.exit(main())
