"""The README's configuration table and the settings code name the same variables, so neither
can drift: a variable the code reads is documented, and a documented one is read."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROCESS_CODE = ("runtime", "services", "edge", "observability")  # what the services and the edge read
_READS = re.compile(r"(?:env\.(?:str|int|float|choice|method|list|file)|environ\.get)\(\s*\"([A-Z][A-Z0-9_]+)\"")
# Read by a program we run rather than by our code; documented all the same.
READ_BY_OTHERS = {"FORWARDED_ALLOW_IPS": "gunicorn reads it itself"}


def _documented() -> set[str]:
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split(" | ")[0])}


def _read_by_code() -> set[str]:
    return {name for folder in PROCESS_CODE for path in (ROOT / folder).rglob("*.py")
            for name in _READS.findall(path.read_text())}


def test_every_variable_the_code_reads_is_in_the_readme_table():
    assert sorted(_read_by_code() - _documented()) == []


def test_every_variable_in_the_readme_table_is_read():
    assert sorted(_documented() - _read_by_code() - set(READ_BY_OTHERS)) == []
