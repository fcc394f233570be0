"""bpflink.testing, the public pytest plugin: a sample user project (tests/sample_project: its own .bpf.c and
tests, no conftest) run by pytest in a subprocess, on this kernel, under pytest-xdist and in a 6.12 guest; the
fixtures used directly here (the plugin is active in bpflink's own session through its entry point)."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Map
from bpflink.errors import NotSupportedError
from bpflink.features import explain
from bpflink.lowlevel import bpf_obj_pin
from bpflink.probe import probe_attach_type
from bpflink.testing import _names
from bpflink.testing._require import not_supported_verdict, require
from bpflink.testing._runner import guest_args
from bpflink.testing.vm import select

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "sample_project"


def run_sample(tmp_path: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess[str],
                                                                            dict[str, tuple[str, str]]]:
    """pytest on the sample project in a child process; its result and {test name: (outcome, message)}."""
    junit = tmp_path / f"junit-{len(list(tmp_path.iterdir()))}.xml"
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                          f"--basetemp={tmp_path / 'base'}", *args], cwd=SAMPLE, capture_output=True, text=True,
                         timeout=timeout)
    outcomes: dict[str, tuple[str, str]] = {}
    if junit.exists():
        for case in ET.parse(junit).iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                el = case.find(tag)
                if el is not None:
                    outcome, message = tag, (el.get("message") or "") + (el.text or "")
            outcomes[case.get("name", "")] = (outcome, message)
    return res, outcomes


def leftovers() -> list[str]:
    """Namespaces, cgroups and bpffs dirs named by the plugin whose process is gone: what was not cleaned up."""
    places = [Path("/run/netns"), Path(os.environ.get("BPFLINK_CGROUP2", "/sys/fs/cgroup/unified")),
              Path("/sys/fs/bpf")]
    out = []
    for place in places:
        for entry in place.iterdir() if place.is_dir() else ():
            m = _names.NAME_RE.match(entry.name)
            if m and not Path(f"/proc/{m.group('pid')}").exists():
                out.append(str(entry))
    return out


def kprobe_multi_expectation() -> str:
    return "passed" if bpflink.supports(AttachType.TRACE_KPROBE_MULTI) else "skipped"


def check_sample(outcomes: dict[str, tuple[str, str]]) -> None:
    assert outcomes["test_cgroup_counter"][0] == "passed", outcomes
    assert outcomes["test_netns_sees_only_its_own_devices"][0] == "passed", outcomes
    outcome, message = outcomes["test_kprobe_multi_counts_my_calls"]
    assert outcome == kprobe_multi_expectation(), outcomes
    if outcome == "skipped":  # the probed reason, e.g. "kernel config lacks CONFIG_FPROBE" on this host
        reason = probe_attach_type(AttachType.TRACE_KPROBE_MULTI).reason
        assert "bpf_requires: missing kprobe_multi" in message and reason in message, message


def test_sample_project_on_this_kernel(tmp_path: Path) -> None:
    res, outcomes = run_sample(tmp_path, "-rA", "--bpf-strict")  # strict: the kprobe_multi skip must be explained
    check_sample(outcomes)
    outcome, message = outcomes["test_forgets_its_link"]
    assert outcome == "failure", outcomes
    assert "bpf_no_leaks: the test left behind" in message and "bpf_link" in message, message
    assert "name=count_egress" in message and "type=cgroup" in message, message
    assert res.returncode == 1, res.stdout + res.stderr
    assert leftovers() == []


@pytest.mark.hostonly  # the names and the cleanup, not the kernel, are under test
def test_sample_project_under_xdist_has_no_collisions(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    # two workers, each test making its own cgroup/netns/objects while the other worker makes its own; every
    # test also under the leak check (ini bpf_no_leaks), which must not count the other worker's pins
    res, outcomes = run_sample(tmp_path, "-n", "2", "-p", "xdist", "test_counter.py", "-o", "bpf_no_leaks=true")
    assert res.returncode == 0, res.stdout + res.stderr
    check_sample(outcomes)
    assert re.search(r"\[gw[01]\]|2 workers|created: 2/2 workers", res.stdout + res.stderr), res.stdout
    assert leftovers() == []


@pytest.mark.hostonly
def test_bpf_strict_refuses_an_unexplained_skip(tmp_path: Path) -> None:
    """--bpf-strict: a NotSupportedError for a feature this kernel should have fails; one the kernel's version
    or config explains stays a skip (both decided from the running kernel's version and config)."""
    for feature in ("tcx", "kprobe_multi"):
        exc = NotSupportedError(feature, "refused", min_kernel="6.6")
        kind, reason = not_supported_verdict(exc, strict=True) or ("", "")
        assert kind == ("skip" if explain(feature) else "fail"), (feature, reason)
        assert not_supported_verdict(exc, strict=False) is not None
        assert not_supported_verdict(exc, strict=False)[0] == "skip"  # type: ignore[index]
    assert not_supported_verdict(OSError(errno.EINVAL, "x"), strict=True) is None


def test_bpf_requires_resolves_as_probe_require() -> None:
    verdict = require(["cgroup", "cgroup_inet_egress", "xdp"])
    assert verdict.ok, verdict
    with pytest.raises(ValueError, match="bpf_requires: 'no_such_thing'"):
        require(["no_such_thing"])


@pytest.mark.hostonly
def test_marker_with_a_bad_name_autoskip_and_strict(pytester_like: Path) -> None:
    (pytester_like / "test_bad.py").write_text(
        "import pytest\nfrom bpflink.errors import NotSupportedError\n\n"
        "@pytest.mark.bpf_requires('no_such_thing')\ndef test_x():\n    pass\n\n"
        "@pytest.mark.bpf_no_autoskip\ndef test_raw():\n    raise NotSupportedError('kprobe_multi', 'refused here')\n\n"
        "def test_auto_kprobe_multi():\n    raise NotSupportedError('kprobe_multi', 'refused here')\n\n"
        "def test_auto_tcx():\n    raise NotSupportedError('tcx', 'refused here')\n")

    def run(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "test_bad.py", *args],
                              cwd=pytester_like, capture_output=True, text=True, timeout=120).stdout

    out = run()
    assert re.search(r"ERROR test_bad.py::test_x - .*bpf_requires: 'no_such_thing' is neither", out), out
    assert "FAILED test_bad.py::test_raw - bpflink.errors.NotSupportedError" in out, out
    for feature in ("kprobe_multi", "tcx"):  # not strict: a skip, at the test's line, with the reason
        assert re.search(rf"SKIPPED \[1\] test_bad.py:\d+: {feature} not ", out), out
    # strict (the ini option here; --bpf-strict in test_sample_project_on_this_kernel): a skip the kernel's
    # version/config does not explain fails
    for args in (("-o", "bpf_strict=true"),):
        out = run(*args)
        for feature in ("kprobe_multi", "tcx"):
            if explain(feature):
                assert re.search(rf"SKIPPED \[1\] test_bad.py:\d+: {feature} not available here: ", out), out
            else:
                assert f"FAILED test_bad.py::test_auto_{feature} - Failed: {feature} refused" in out, out
                assert re.search(rf"{feature} refused \(.*\) although the kernel is >= ", out), out


@pytest.fixture
def pytester_like(tmp_path: Path) -> Path:
    """An empty project directory with its own pytest.ini (so bpflink's conftest is not in play)."""
    d = tmp_path / "proj"
    d.mkdir()
    (d / "pytest.ini").write_text("[pytest]\n")
    return d


@pytest.mark.hostonly
def test_plugin_is_inert(tmp_path: Path) -> None:
    """Loading the plugin imports no bpflink module beyond the package and the plugin, prints nothing, and a run
    of unrelated tests by an unprivileged user passes."""
    code = ("import sys; before = set(sys.modules); import bpflink.testing.plugin; "
            "print(sorted(m for m in set(sys.modules) - before if m.startswith('bpflink')))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    # the package's own import (the extension and its lowlevel mirror, a few ms: bench/) and the plugin; nothing
    # that probes or talks to the kernel
    assert set(eval(res.stdout)) <= {"bpflink", "bpflink._version", "bpflink._native", "bpflink._ffi",
                                     "bpflink._ffi.lib", "bpflink._log", "bpflink.lowlevel", "bpflink.testing",
                                     "bpflink.testing.plugin"}, res.stdout
    # a project an unprivileged user can read and write (tmp_path's parents are root-only)
    pytester_like = Path(tempfile.mkdtemp(prefix="bpflink-inert-"))
    os.chmod(pytester_like, 0o777)
    (pytester_like / "pytest.ini").write_text("[pytest]\n")
    (pytester_like / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_plain.py"]
    setpriv = shutil.which("setpriv")
    if setpriv is not None and os.geteuid() == 0:
        cmd = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", *cmd]
    try:
        res = subprocess.run(cmd, cwd=pytester_like, capture_output=True, text=True, timeout=120,
                             env={**os.environ, "HOME": str(pytester_like)})
    finally:
        shutil.rmtree(pytester_like, ignore_errors=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "bpflink" not in res.stdout + res.stderr
    listed = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--markers"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60).stdout
    assert "@pytest.mark.bpf_requires" in listed and "@pytest.mark.bpf_no_autoskip" in listed


# --- the fixtures, used directly ----------------------------------------------------------------------------


def test_bpf_cgroup_runs_commands_and_callables_inside(bpf_cgroup) -> None:  # type: ignore[no-untyped-def]
    res = bpf_cgroup.run(["cat", "/proc/self/cgroup"])
    assert res.returncode == 0 and res.stdout.strip().endswith("/" + bpf_cgroup.path.name), res.stdout
    inside = bpf_cgroup.run(lambda: Path("/proc/self/cgroup").read_text().strip())
    assert inside.endswith("/" + bpf_cgroup.path.name)
    with pytest.raises(ZeroDivisionError):
        bpf_cgroup.run(lambda: 1 // 0)
    assert bpf_cgroup.procs == []  # the children are gone, and the test process never joined
    assert os.path.samestat(os.fstat(bpf_cgroup.fd), os.stat(bpf_cgroup.path))


def test_bpf_veth_carries_traffic_between_its_ends(bpf_veth) -> None:  # type: ignore[no-untyped-def]
    assert sorted(bpf_veth.netns.devices()) == sorted(["lo", bpf_veth.dev_a, bpf_veth.dev_b])
    assert bpf_veth.dev_a not in [name for _, name in socket.if_nameindex()]  # not in the host's netns
    assert bpf_veth.udp_deliveries(3) == 3
    assert bpf_veth.ifindex_a != bpf_veth.ifindex_b


def test_bpf_netkit_pair_or_honest_skip(bpf_netkit) -> None:  # type: ignore[no-untyped-def]
    assert sorted(bpf_netkit.netns.devices()) == sorted(["lo", bpf_netkit.dev_a, bpf_netkit.dev_b])
    assert bpf_netkit.udp_deliveries(3) == 3


def test_bpffs_dir_is_private_and_emptied(bpffs: Path) -> None:
    from bpflink.testing import BpfDir

    assert bpffs.parent.exists() and _names.NAME_RE.match(bpffs.name)
    with Map.array(1) as m:
        assert bpf_obj_pin(m.fd, str(bpffs / "m").encode()) == 0
    inner = BpfDir.create("inner")
    with Map.array(1) as m:
        assert bpf_obj_pin(m.fd, str(inner.path / "m").encode()) == 0
    (inner.path / "sub").mkdir()
    inner.close()
    assert not inner.path.exists()
    assert (bpffs / "m").exists()  # removed by the fixture after the test (leftovers() checks in other tests)


def test_bpf_no_leaks_passes_a_clean_test(bpf_no_leaks, bpf_cgroup, bpf_object) -> None:  # type: ignore[no-untyped-def]
    obj = bpf_object(SAMPLE / "counter.bpf.c", programs=["count_egress"])
    with obj.program("count_egress") as prog, bpflink.link_create(prog, bpf_cgroup.fd, AttachType.CGROUP_INET_EGRESS):
        assert bpf_cgroup.run(["true"]).returncode == 0


# --- the kernel runner --------------------------------------------------------------------------------------


@pytest.mark.hostonly
def test_guest_arguments_and_kernel_names() -> None:
    assert guest_args(["-q", "--bpf-kernel", "6.12", "-n", "2", "--bpf-kernel=7.3", "-n2", "--junitxml=x.xml",
                       "tests/t.py", "-k", "kprobe", "--bpf-strict"]) == ["-q", "tests/t.py", "-k", "kprobe",
                                                                         "--bpf-strict"]
    assert select(["6.12,7.3", "6.12"]) == ["6.12", "7.3"]
    assert {"6.1", "6.12", "7.3"} <= set(select(["all"]))  # every pinned kernel (5.10 too)
    with pytest.raises(ValueError, match=r"no pinned kernel '9\.9'"):
        select(["9.9"])
    res = subprocess.run([sys.executable, "-m", "bpflink", "vm", "--kernel", "9.9", "--", "true"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no pinned kernel '9.9'" in res.stderr


@pytest.mark.slow
@pytest.mark.hostonly
def test_sample_kprobe_multi_passes_in_the_612_guest(tmp_path: Path) -> None:
    """--bpf-kernel 6.12: the kprobe_multi test this host skips (no CONFIG_FPROBE) passes in the guest, and the
    leaking test fails there, reported as <test id>@6.12 (~1 min under TCG; the kernel is fetched once into the
    cache)."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 is not installed (scripts/setup installs it)")
    res, outcomes = run_sample(tmp_path, "-v", "--bpf-kernel", "6.12", "test_counter.py", "test_leak.py", "-k",
                               "kprobe or leak", timeout=1200)
    out = res.stdout + res.stderr
    assert re.search(r"test_counter.py::test_kprobe_multi_counts_my_calls@6.12 PASSED", res.stdout), out
    assert outcomes.get("test_kprobe_multi_counts_my_calls@6.12", ("?", ""))[0] == "passed", outcomes
    # a guest's failure comes back whole: outcome, the kernel in the id and the headline, the message
    assert re.search(r"test_leak.py::test_forgets_its_link@6.12 FAILED", res.stdout), out
    assert "_ test_forgets_its_link @6.12 _" in res.stdout, out
    outcome, message = outcomes.get("test_forgets_its_link@6.12", ("?", ""))
    assert outcome == "failure" and "bpf_link" in message and "name=count_egress" in message, outcomes
    assert res.returncode == 1, out


@pytest.mark.slow
@pytest.mark.hostonly
def test_bpflink_vm_runs_a_command_in_the_guest(tmp_path: Path) -> None:
    """``bpflink vm --kernel 6.12 -- CMD``: CMD runs there, in the current directory, and its exit status is ours."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 is not installed (scripts/setup installs it)")
    res = subprocess.run([sys.executable, "-m", "bpflink", "vm", "--kernel", "6.12", "--", "uname -r; pwd; exit 3"],
                         cwd=SAMPLE, capture_output=True, text=True, timeout=600)
    assert res.returncode == 3, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert any(line.startswith("6.12.") for line in lines), res.stdout
    assert str(SAMPLE) in lines, res.stdout


def test_ctrl_c_mid_test_still_removes_what_the_fixtures_made(pytester_like: Path) -> None:
    """SIGINT (Ctrl-C) while a test holds a cgroup, a netns and a bpffs directory: pytest's teardown removes them."""
    ready = pytester_like / "ready"
    (pytester_like / "test_interrupted.py").write_text(
        "import time\nfrom pathlib import Path\n\n"
        "def test_waits(bpf_cgroup, bpf_netns, bpffs):\n"
        f"    Path({str(ready)!r}).write_text('\\n'.join([str(bpf_cgroup.path), bpf_netns.path, str(bpffs)]))\n"
        "    time.sleep(120)\n")
    child = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_interrupted.py"],
                             cwd=pytester_like, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() or not ready.read_text():
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()[0]
            time.sleep(0.05)
        made = ready.read_text().splitlines()
        assert len(made) == 3 and all(Path(p).exists() for p in made), made
        child.send_signal(signal.SIGINT)
        out = child.communicate(timeout=60)[0]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "KeyboardInterrupt" in out, out
    assert [p for p in made if Path(p).exists()] == [], out
    assert leftovers() == []
