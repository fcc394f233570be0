"""kprobe, kretprobe, ksyscall and kprobe.multi sections through Object.attach, the kprobe doctor and best-effort
kprobe_multi. The host (6.18, locked down) lacks kprobes and fprobe: these skip there with the probed reason and
run in the 6.12 and 7.3 guests (scripts/vmtest --kernel 6.12 --pytest tests/test_attach_kprobe.py)."""

from __future__ import annotations

import fnmatch
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import Object, kernel
from bpflink.attach import kprobe, kprobe_multi, ksyscall, resolve, syscall_prefix
from bpflink.attach.tracing import _parse_blacklist, glob_regex, kprobe_blacklist
from bpflink.errors import NotSupportedError
from bpflink.perf import tracefs
from features import unsupported

KPROBE, KRETPROBE, KSYSCALL, MULTI, MULTI_BARE = 12, 13, 14, 15, 16
N = 4


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    o = Object.open(bpf_objects["attach_sections"], programs=["on_kprobe", "on_kretprobe", "on_ksyscall",
                                                             "on_kprobe_multi", "on_kprobe_multi_bare"])
    with o:
        with o.map("cfg") as cfg:
            cfg.update(0, os.getpid())
        yield o


def _hits(obj: Object, key: int) -> int:
    with obj.map("hits") as m:
        return m.lookup_int(key)


def _getpgid(n: int = N) -> None:
    for _ in range(n):
        os.getpgid(os.getpid())  # getpgid(0) skips security_task_getpgid: a pid must be looked up


@pytest.mark.parametrize(("prog", "key"), [("on_kprobe", KPROBE), ("on_kretprobe", KRETPROBE),
                                           ("on_ksyscall", KSYSCALL)])
def test_kprobe_sections_fire(obj: Object, prog: str, key: int) -> None:
    with obj:
        try:
            link = obj.attach(prog)
        except OSError as exc:
            unsupported("kprobe", exc)  # auto mode: the perf event ioctl before 5.15
        with link:
            assert link.perf_event is not None
            _getpgid()
            assert _hits(obj, key) == N
        assert link.perf_event.closed
        _getpgid()
        assert _hits(obj, key) == N


def test_ksyscall_prefix_and_kretprobe_maxactive(obj: Object) -> None:
    with obj, obj.program("on_kretprobe") as prog:
        try:
            link = kprobe(prog, "security_task_getpgid", retprobe=True, maxactive=8)
        except OSError as exc:
            unsupported("kprobe", exc)  # auto mode: the perf event ioctl before 5.15
        events = tracefs() / "kprobe_events"
        with link:
            assert "bpflink" in events.read_text()
            _getpgid()
            assert _hits(obj, KRETPROBE) == N
        assert f"r{os.getpid()}_" not in events.read_text()  # the tracefs event went with the link
    if os.uname().machine == "x86_64":
        assert syscall_prefix() == "__x64_"
    with pytest.raises(ValueError, match="syscall name"):
        ksyscall(prog, "get pid")


def test_kprobe_multi_glob_section(obj: Object) -> None:
    with obj:
        try:
            link = obj.attach("on_kprobe_multi")
        except OSError as exc:
            unsupported("kprobe_multi", exc)
        with link:
            _getpgid()
            assert _hits(obj, MULTI) == N
        with pytest.raises(ValueError, match=r"on_kprobe_multi_bare.*target= a glob"):
            obj.attach("on_kprobe_multi_bare")


def test_doctor_and_best_effort(obj: Object) -> None:
    try:
        names = [ln.split()[0] for ln in (tracefs() / "available_filter_functions").read_text().splitlines()]
    except OSError as exc:
        unsupported("kprobe_multi", exc)
    with open("/proc/kallsyms") as f:
        text_syms = {p[2] for p in (ln.split() for ln in f) if len(p) >= 3 and p[1] in "tT"}
    traceable = set(names)
    notrace = next(s for s in sorted(text_syms) if s not in traceable and "." not in s and s.startswith("__"))
    variant = next((n for n in sorted(traceable) if ".isra." in n and n.split(".")[0] not in traceable
                    and sum(1 for m in traceable if m.startswith(n.split(".")[0] + ".")) == 1), None)
    asked = ["security_task_getpgid", "bpflink_no_such_fn", notrace] + ([variant.split(".")[0]] if variant else [])
    report = resolve(asked)
    v = {x.name: x for x in report.verdicts}
    assert v["security_task_getpgid"].status == "attached"
    assert v["bpflink_no_such_fn"].status == "skipped" and "not in kallsyms" in v["bpflink_no_such_fn"].reason
    assert v[notrace].status == "skipped" and "not traceable" in v[notrace].reason
    if variant:
        base = variant.split(".")[0]
        assert v[base].status == "attached" and v[base].symbols == (variant,), v[base]
    with obj, obj.program("on_kprobe_multi_bare") as prog:
        with pytest.raises(ValueError, match="bpflink_no_such_fn: no such kernel function"):
            kprobe_multi(prog, ["security_task_getpgid", "bpflink_no_such_fn"])
        try:
            link, rep = kprobe_multi(prog, ["security_task_getpgid", "bpflink_no_such_fn"], best_effort=True)
        except OSError as exc:
            unsupported("kprobe_multi", exc)
        with link:
            assert rep.attached == ["security_task_getpgid"] and list(rep.skipped) == ["bpflink_no_such_fn"]
            _getpgid()
            assert _hits(obj, MULTI_BARE) == N


def test_kprobe_legacy_ioctl_and_kprobe_multi_as_single_probes(obj: Object) -> None:
    """The fallbacks forced with mode="legacy" (what auto picks before 5.15 / 5.18): exact counts."""
    with obj, obj.program("on_kprobe") as prog:
        try:
            link = kprobe(prog, "security_task_getpgid", mode="legacy")
        except OSError as exc:
            unsupported("kprobe", exc)
        with link:
            assert link.kind == "perf_event_ioctl" and link.legacy
            _getpgid()
            assert _hits(obj, KPROBE) == N
        _getpgid()
        assert _hits(obj, KPROBE) == N
        with pytest.raises(NotSupportedError, match=r"BPF cookies need a perf_event link.*Linux >= 5\.15"):
            kprobe(prog, "security_task_getpgid", cookie=3, mode="legacy")
        with kprobe_multi(prog, ["security_task_getpgid"], mode="legacy") as multi:
            assert multi.kind == "single_probes" and multi.info().events == ("kprobe:security_task_getpgid",)
            _getpgid()
            assert _hits(obj, KPROBE) == 2 * N
        _getpgid()
        assert _hits(obj, KPROBE) == 2 * N


def test_kprobe_through_tracefs_kprobe_events(obj: Object) -> None:
    """mode="tracefs" (what auto uses without a kprobe PMU): a kprobe_events entry attached with the ioctl,
    exact counts, removed from tracefs on close."""
    from bpflink.attach.tracefs import GROUP

    with obj, obj.program("on_kprobe") as prog:
        try:
            link = kprobe(prog, "security_task_getpgid", mode="tracefs")
        except OSError as exc:
            unsupported("kprobe", exc)
        with link:
            assert link.kind == "tracefs_ioctl" and link.legacy
            name = link.info().events[0].rsplit(":", 1)[1]
            assert any(f"{GROUP}/{name} " in ln for ln in (tracefs() / "kprobe_events").read_text().splitlines())
            _getpgid()
            assert _hits(obj, KPROBE) == N
        assert not any(f"{GROUP}/{name} " in ln for ln in (tracefs() / "kprobe_events").read_text().splitlines())
        _getpgid()
        assert _hits(obj, KPROBE) == N


def test_doctor_reports_blacklisted_names(obj: Object) -> None:
    """Names on debugfs kprobes/blacklist are skipped as blacklisted; where debugfs is not mounted it is mounted
    in a private namespace for the read, and no mount is left behind."""
    try:
        (tracefs() / "available_filter_functions").read_text()
    except OSError as exc:
        unsupported("kprobe_multi", exc)
    if not os.path.isdir("/sys/bus/event_source/devices/kprobe"):
        unsupported("kprobe", NotSupportedError("kprobe", "no kprobe PMU in /sys/bus/event_source/devices"))
    mounts_before = kernel.mounts("debugfs")
    black = kprobe_blacklist()
    assert kernel.mounts("debugfs") == mounts_before
    assert black, "a kernel with kprobes always has a kprobe blacklist (NOKPROBE_SYMBOL)"
    # without debugfs mounted (a child in its own mount namespace unmounts it): the private-mount read gives the
    # same names, and the child still has no debugfs mount after it
    code = ("import sys; from bpflink import kernel; from bpflink.attach.tracing import kprobe_blacklist; "
            "b = kprobe_blacklist(); print(len(b), sorted(b)[0] if b else '', len(kernel.mounts('debugfs')))")
    umount = " && ".join(f"umount -l {m}" for m in reversed(mounts_before)) or "true"
    child = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            f'{umount} && exec "$0" -c "$1"', sys.executable, code],
                           capture_output=True, text=True, timeout=120, check=True)
    assert child.stdout.split() == [str(len(black)), sorted(black)[0], "0"], child
    assert kernel.mounts("debugfs") == mounts_before
    name = sorted(black)[0]
    report = resolve([name, "security_task_getpgid"])
    v = {x.name: x for x in report.verdicts}
    assert v[name].status == "skipped" and "blacklist" in v[name].reason, v[name]
    assert v["security_task_getpgid"].status == "attached"
    with obj.program("on_kprobe_multi_bare") as prog, \
            pytest.raises(ValueError, match=f"{re.escape(name)}: on the kprobe blacklist"):
        kprobe_multi(prog, [name, "security_task_getpgid"])


@pytest.mark.hostonly
def test_glob_regex_matches_as_fnmatch_does() -> None:
    names = ["tcp_v4_rcv", "vfs_read", "a", "ab", "__x64_sys_bpf", "foo.isra.0", "x]y", "c!d", "z^q", "b-c", "_s",
             "do_sys_open", "bpf_prog_run", "]x", "[y"]
    rng = random.Random(7)
    pats = ["*", "*_s*", "tcp_*", "[a-d]*", "[!a-y]*", "?", "v?s_*", "[]x]*", "*[0-9]", "[!]]*", "[^z]*", "[*",
            "*.isra.*", "[b-]*", "*[!_]", "c!*", "z^*", "[[]y"]
    pats += ["".join(rng.choice("ab_*?[]!x-^.") for _ in range(rng.randint(1, 6))) for _ in range(300)]
    for pat in pats:
        rx = re.compile(glob_regex(pat))
        for n in names:
            assert bool(rx.fullmatch(n)) == fnmatch.fnmatchcase(n, pat), (pat, n, glob_regex(pat))
        assert rx.fullmatch("a b") is None and rx.fullmatch("a\nb") is None  # never crosses a column or a line


@pytest.mark.hostonly
def test_blacklist_format() -> None:
    text = ("0xffffffff81000000-0xffffffff81000010\tdo_int3\n"
            "0xffffffffc0000000-0xffffffffc0000040\tmod_fn [some_mod]\n\n")
    assert _parse_blacklist(text) == {"do_int3", "mod_fn"}
