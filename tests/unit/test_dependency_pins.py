"""The image's runtime pins and the development pins never disagree."""

import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _pins(name: str) -> dict[str, str]:
    lines = (ROOT / name).read_text().splitlines()
    return {line.split("==")[0].lower(): line.split("==")[1] for line in lines if "==" in line and not line.startswith("#")}


def test_every_runtime_pin_matches_the_development_lock():
    runtime, full = _pins("requirements-runtime.lock"), _pins("requirements.lock")
    assert {name: version for name, version in runtime.items() if full.get(name) != version} == {}


def test_every_direct_dependency_is_pinned_in_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    assert all("==" in d for d in declared), [d for d in declared if "==" not in d]
