"""kprobe_multi links: entry and return probes with per-symbol cookies on two security hooks this process
triggers (getpgid, getsid), by name and by address, and kprobe sessions; then opts.KprobeMulti's checks.

Kernels without CONFIG_FPROBE answer EOPNOTSUPP: the tests skip through honest_skips.unsupported, which fails
instead when the kernel should have had kprobe_multi."""

from __future__ import annotations

import array
import os
from pathlib import Path

import pytest

from bpflink import AttachType, Link, Program, link_create, opts
from bpflink.symbols import kallsyms_address
from honest_skips import link_or_skip, unsupported
from tracehelp import ENTRY, RETURN, hits, load, value

MULTI = AttachType.TRACE_KPROBE_MULTI
SESSION = AttachType.TRACE_KPROBE_SESSION
SYMS = ["security_task_getpgid", "security_task_getsid"]
CAP = 1 << 20

# getpgid/getsid of pid 0 skip the security hook (kernel/sys.c); an explicit pid goes through it
ME = os.getpid()


def trigger(pgid: int = 3, sid: int = 2) -> None:
    for _ in range(pgid):
        os.getpgid(ME)
    for _ in range(sid):
        os.getsid(ME)


def attach(prog: Program, at: AttachType, built: opts.KprobeMulti, feature: str) -> Link:
    return link_or_skip(feature, prog, None, at, built)


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["trace_multi"]


def test_entry_probes_by_name_with_cookies(obj: Path) -> None:
    with load(obj, "kprobe_multi_entry", only_me=True) as prog:
        with attach(prog, MULTI, opts.KprobeMulti(syms=SYMS, cookies=[1, 2]), "kprobe_multi"):
            trigger()
            assert (hits(prog, 1), hits(prog, 2)) == (3, 2)
        trigger()
        assert (hits(prog, 1), hits(prog, 2)) == (3, 2)  # closed: no more hits


def test_entry_probes_by_address(obj: Path) -> None:
    addrs = array.array("Q", [kallsyms_address(s) for s in SYMS])
    with load(obj, "kprobe_multi_entry", only_me=True) as prog, \
            attach(prog, MULTI, opts.KprobeMulti(addrs=addrs, cookies=[5, 6]), "kprobe_multi"):
        trigger(1, 4)
        assert (hits(prog, 5), hits(prog, 6)) == (1, 4)


def test_return_probes(obj: Path) -> None:
    with load(obj, "kprobe_multi_return", only_me=True) as prog, \
            attach(prog, MULTI, opts.KprobeMulti(syms=SYMS, cookies=[1, 2], retprobe=True), "kprobe_multi"):
        trigger(2, 3)
        assert (hits(prog, 1 | RETURN), hits(prog, 2 | RETURN)) == (2, 3)
        assert hits(prog, 1) == 0
        assert value(prog, 1) == 0  # the hook allowed getpgid


def test_kprobe_session_runs_entry_and_return(bpf_objects: dict[str, Path]) -> None:
    with load(bpf_objects["trace_session"], "kprobe_session", only_me=True) as prog, \
            attach(prog, SESSION, opts.KprobeMulti(syms=SYMS, cookies=[1, 2], session=True), "kprobe_session"):
        trigger(3, 2)
        assert (hits(prog, 1 | ENTRY), hits(prog, 2 | ENTRY)) == (3, 2)
        # entry returned 0 for cookie 1 (return runs) and 1 for cookie 2 (return skipped)
        assert (hits(prog, 1 | RETURN), hits(prog, 2 | RETURN)) == (3, 0)


def test_unknown_symbol_is_esrch(obj: Path) -> None:
    with load(obj, "kprobe_multi_entry") as prog:
        try:
            link_create(prog, None, MULTI, opts.KprobeMulti(syms=["bpflink_no_such_fn"])).close()
        except ProcessLookupError as exc:
            assert "not traceable" in str(exc)
        except OSError as exc:
            unsupported("kprobe_multi", exc)
        else:
            pytest.fail("a missing kernel symbol was accepted")


# --- validation: before any syscall -------------------------------------------------------------------------
@pytest.mark.hostonly
def test_syms_xor_addrs() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        opts.KprobeMulti(syms=SYMS, addrs=[1, 2])
    with pytest.raises(ValueError, match="exactly one"):
        opts.KprobeMulti()


@pytest.mark.hostonly
def test_cookie_count_must_match() -> None:
    with pytest.raises(ValueError, match=r"cookies must hold as many entries as there are probes \(2\), got 1"):
        opts.KprobeMulti(syms=SYMS, cookies=[1])
    with pytest.raises(ValueError, match=r"\(1\), got 2"):
        opts.KprobeMulti(addrs=[0xFFFFFFFF81000000], cookies=[1, 2])


@pytest.mark.hostonly
@pytest.mark.parametrize("count", [0, CAP + 1])
def test_count_limits(count: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1048576 entries"):
        opts.KprobeMulti(addrs=array.array("Q", [0xFFFFFFFF81000000]) * count)
    with pytest.raises(ValueError, match=r"1\.\.1048576 entries"):
        opts.KprobeMulti(syms=["do_nanosleep"] * count)


@pytest.mark.hostonly
def test_cap_builds_names_in_one_buffer() -> None:
    from bpflink import lowlevel

    built = opts.KprobeMulti(syms=["a", "bb", "ccc"] * (CAP // 3), cookies=bytes(8 * (CAP // 3 * 3)))
    b = built.build(MULTI)  # kept in a local: .ptr's fields point into memory b owns (a temporary would free it)
    km = b.ptr.kprobe_multi
    assert km.cnt == CAP // 3 * 3
    assert [lowlevel.ffi.string(km.syms[i]) for i in (0, 1, 2, km.cnt - 1)] == [b"a", b"bb", b"ccc", b"ccc"]


@pytest.mark.hostonly
@pytest.mark.parametrize(("kwargs", "exc"), [
    ({"addrs": [-1]}, ValueError), ({"addrs": [1 << 64]}, ValueError), ({"syms": SYMS, "cookies": [-1, 0]}, ValueError),
    ({"syms": ["a\0b"]}, ValueError), ({"syms": [""]}, ValueError), ({"syms": ["x" * 512]}, ValueError),
    ({"syms": "do_nanosleep"}, TypeError), ({"syms": [b"do_nanosleep"]}, TypeError), ({"addrs": 5}, TypeError),
    ({"addrs": [1.5]}, TypeError), ({"syms": SYMS, "retprobe": "yes"}, TypeError),
    ({"syms": SYMS, "session": 1}, TypeError), ({"syms": SYMS, "session": True, "retprobe": True}, ValueError),
])
def test_bad_values(kwargs: dict[str, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        opts.KprobeMulti(**kwargs)  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_attach_type_and_session_mode() -> None:
    with pytest.raises(TypeError, match=r"KprobeMulti.*TRACE_UPROBE_MULTI"):
        opts.KprobeMulti(syms=SYMS).build(AttachType.TRACE_UPROBE_MULTI)
    with pytest.raises(TypeError, match=r"session=True.*TRACE_KPROBE_SESSION.*not TRACE_KPROBE_MULTI"):
        opts.KprobeMulti(syms=SYMS, session=True).build(MULTI)
    with pytest.raises(ValueError, match="retprobe"):
        opts.KprobeMulti(syms=SYMS, retprobe=True).build(SESSION)
    b = opts.KprobeMulti(syms=SYMS, retprobe=True).build(MULTI)
    km = b.ptr.kprobe_multi
    assert km.flags != 0 and km.cnt == 2
