"""``pytest --bpf-kernel``: the same pytest command line in QEMU guests, each guest's reports fed back into this
session as ``<test id>@<kernel>`` (terminal, exit status, and ``--junitxml`` of the host run all see them).

Each guest runs ``python -m pytest <the host's arguments>`` with this interpreter (the host's / is the guest's, so
the venv and the project are the same), writes a junit xml and the serialised reports into a directory the host
shares read-write, and the host replays those reports through pytest's hooks. The guests run in parallel, up to
one per host CPU; kernels are fetched once before.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from . import vm

# options that make no sense inside a guest (or are replaced there), with whether they take a value
_DROP = {"--bpf-kernel": True, "--bpf-kernel-results": True, "--bpf-guest-report": True, "-n": True,
         "--numprocesses": True, "--dist": True, "--junitxml": True, "--junit-xml": True, "--basetemp": True,
         "--maxprocesses": True}


def guest_args(args: list[str]) -> list[str]:
    """The host's pytest arguments without the ones the guests must not repeat."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _DROP:
            skip = _DROP[name] and "=" not in arg
            continue
        if (arg.startswith("-n") and arg[2:].isdigit()) or arg in ("-nauto", "-nlogical"):
            continue
        out.append(arg)
    return out


def _command(config: pytest.Config, kernel: str, results: Path) -> str:
    args = guest_args(list(config.invocation_params.args))
    parts = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--basetemp=/tmp/bpflink-pytest-{kernel}",
             f"--junitxml={results / 'junit.xml'}", "-o", f"junit_suite_name={kernel}",
             f"--bpf-guest-report={results / 'reports.jsonl'}", *args]
    return "PYTHONDONTWRITEBYTECODE=1 " + shlex.join(parts)


def _replay(config: pytest.Config, kernel: str, results: Path) -> int:
    """Feed the guest's reports into this session; how many there were."""
    path = results / "reports.jsonl"
    if not path.exists():
        return 0
    count = 0
    hook = config.hook
    for line in path.read_text().splitlines():
        try:
            data = json.loads(line)
        except ValueError:  # the last line of a guest that died mid-write
            continue
        rep = hook.pytest_report_from_serializable(config=config, data=data)
        if rep is None:
            continue
        count += 1
        rep.nodeid = f"{rep.nodeid}@{kernel}"
        if isinstance(rep, pytest.CollectReport):
            hook.pytest_collectreport(report=rep)
            continue
        # the failure headline is the location's domain: name the kernel there too (the space keeps the terminal
        # from rewriting the node id, which it does when the id ends with the domain)
        fspath, lineno, domain = rep.location
        rep.location = (fspath, lineno, f"{domain} @{kernel}")
        if rep.when == "setup":
            hook.pytest_runtest_logstart(nodeid=rep.nodeid, location=rep.location)
        hook.pytest_runtest_logreport(report=rep)
        if rep.when == "teardown":
            hook.pytest_runtest_logfinish(nodeid=rep.nodeid, location=rep.location)
    return count


def _guest_failed(config: pytest.Config, kernel: str, rc: int, results: Path) -> None:
    """A guest that reported nothing usable (boot failure, timeout, pytest usage error): one failed report."""
    log = results / "console.log"
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else "(no log)"
    nodeid = f"<bpflink guest {kernel}>"
    location = (nodeid, None, nodeid)
    rep = pytest.TestReport(nodeid, location, {}, "failed",
                            f"the {kernel} guest exited {rc} without test reports; its console (last lines):\n{tail}",
                            "call")
    config.hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    config.hook.pytest_runtest_logreport(report=rep)
    config.hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)


def run_guests(session: pytest.Session) -> None:
    config = session.config
    try:
        kernels = vm.select(config.getoption("bpf_kernel"))
    except ValueError as exc:
        raise pytest.UsageError(f"--bpf-kernel: {exc}") from None
    missing = vm.missing_tools()
    if missing:
        raise pytest.UsageError(f"--bpf-kernel needs: apt-get install {' '.join(missing)}")
    tr: Any = config.pluginmanager.getplugin("terminalreporter")

    def say(text: str) -> None:
        if tr is not None:
            tr.write_line(f"bpflink: {text}")

    keep = config.getoption("bpf_kernel_results")
    base = Path(keep).resolve() if keep else Path(tempfile.mkdtemp(prefix="bpflink-guests-"))
    dirs = {}
    for k in kernels:
        dirs[k] = base / k
        shutil.rmtree(dirs[k], ignore_errors=True)
        dirs[k].mkdir(parents=True)
    say(f"fetching kernels {', '.join(kernels)} (cached in {vm.cache_dir()})")
    with open(base / "fetch.log", "w") as log:
        try:
            vm.fetch(kernels, stdout=log)
        except (OSError, RuntimeError) as exc:
            raise pytest.UsageError(f"--bpf-kernel: {exc}; see {base / 'fetch.log'}") from None

    def one(kernel: str) -> int:
        with open(dirs[kernel] / "console.log", "w") as log:
            return vm.run(kernel, _command(config, kernel, dirs[kernel]), rwdir=dirs[kernel],
                          project=config.invocation_params.dir, python=sys.executable,
                          timeout=float(os.environ.get("VM_TIMEOUT", "2400")), stdout=log)

    jobs = max(1, min(len(kernels), int(os.environ.get("VM_JOBS", os.cpu_count() or 1))))
    say(f"running the selected tests in {len(kernels)} QEMU guest(s), {jobs} at a time "
        f"(results: {base}{'' if keep else ', removed afterwards'})")
    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {k: pool.submit(one, k) for k in kernels}
            for k in kernels:  # hooks run in this thread, kernel by kernel, as each guest finishes
                rc = futures[k].result()
                if tr is not None:
                    tr.ensure_newline()
                say(f"{k} guest: pytest exit {rc}")
                count = _replay(config, k, dirs[k])
                if count == 0 or rc not in (0, 1, 5):
                    _guest_failed(config, k, rc, dirs[k])
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
