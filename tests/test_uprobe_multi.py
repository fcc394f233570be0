"""uprobe_multi links on a C binary built here: hits per function and per-offset cookies, symbols resolved in
PIE, non-PIE and shared-library ELF files, the pid filter, return probes, and uprobe sessions; then every rule
opts.UprobeMulti checks before the syscall."""

from __future__ import annotations

import array
import errno
import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, LinkType, link_create, opts
from bpflink.info import UprobeMultiLinkInfo
from bpflink.listing import link_ids
from bpflink.symbols import symbol_offsets
from conftest import open_fds
from honest_skips import unsupported
from tracehelp import CALLS, ENTRY, FUNCS, RETURN, Binaries, build_binaries, hits, load, run, value

MULTI = AttachType.TRACE_UPROBE_MULTI
SESSION = AttachType.TRACE_UPROBE_SESSION
CAP = 1 << 20


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Binaries:
    return build_binaries(tmp_path_factory.mktemp("uprobe_multi"))


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["trace_multi"]


@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_hits_per_function_with_per_offset_cookies(obj: Path, bins: Binaries, kind: str) -> None:
    binary = getattr(bins, kind)
    with load(obj, "uprobe_multi_entry") as prog, \
            link_create(prog, None, MULTI, opts.UprobeMulti(binary, symbols=FUNCS, cookies=[101, 102, 103])):
        run(binary, 5)
        assert [hits(prog, c) for c in (101, 102, 103)] == [5 * n for n in CALLS]


def _numpy_offsets(offsets: list[int]) -> object:
    import numpy as np  # a test dependency (requirements-dev.txt): never skipped
    return np.array(offsets, dtype=np.uint64)


@pytest.mark.parametrize("form", ["list", "tuple", "array", "bytes", "memoryview", "numpy"])
def test_offsets_as_sequence_or_buffer(obj: Path, bins: Binaries, form: str) -> None:
    offsets = symbol_offsets(bins.pie, FUNCS)
    packed = array.array("Q", offsets)
    given: object = {"list": offsets, "tuple": tuple(offsets), "array": packed, "bytes": packed.tobytes(),
                     "memoryview": memoryview(packed)}.get(form)
    if form == "numpy":
        given = _numpy_offsets(offsets)
    built = opts.UprobeMulti(bins.pie, offsets=given)
    assert list(built.offsets) == offsets  # type: ignore[arg-type]
    with load(obj, "uprobe_multi_entry") as prog, link_create(prog, None, MULTI, built):
        run(bins.pie, 2)
        assert hits(prog, 0) == 2 * sum(CALLS)  # no cookies: every probe reports 0


def test_caller_mutation_after_building_changes_nothing(bins: Binaries) -> None:
    offsets = array.array("Q", symbol_offsets(bins.pie, FUNCS))
    cookies = [1, 2, 3]
    built = opts.UprobeMulti(bins.pie, offsets=offsets, cookies=cookies)
    offsets[0], cookies[0] = 0xDEAD, 99
    b = built.build(MULTI)  # kept in a local: .ptr's fields point into memory b owns (a temporary would free it)
    c = b.ptr.uprobe_multi
    assert c.offsets[0] == symbol_offsets(bins.pie, FUNCS[:1])[0] and c.cookies[0] == 1 and c.cnt == 3


def _gone(link_id: int) -> None:
    """Wait (briefly) until the kernel has released ``link_id``: closing hands it back before the id is freed on
    some kernels."""
    for _ in range(200):
        if link_id not in set(link_ids()):
            return
        time.sleep(0.01)
    raise AssertionError(f"link {link_id} still listed 2 s after its last fd was closed")


def test_info_arrays_read_when_asked(obj: Path, bins: Binaries) -> None:
    """links() leaves the arrays in the kernel until a field is read (then reads that array by id and keeps it);
    link.info() copies them out at once; a listed link closed before its arrays were read names itself."""
    offsets = symbol_offsets(bins.pie, FUNCS)
    cookies = (101, 102, 103)
    with load(obj, "uprobe_multi_entry") as prog:
        link = link_create(prog, None, MULTI, opts.UprobeMulti(bins.pie, offsets=offsets, cookies=cookies))
        with link:
            run(bins.pie, 2)
            assert [hits(prog, c) for c in cookies] == [2 * n for n in CALLS]
            before = open_fds()
            (listed,) = [i for i in bpflink.links() if i.id == link.id]
            (unread,) = [i for i in bpflink.links() if i.id == link.id]
            assert isinstance(listed, UprobeMultiLinkInfo) and isinstance(unread, UprobeMultiLinkInfo)
            assert (listed.path, listed.count, listed.pid, unread.path) == (str(bins.pie), 3, 0, str(bins.pie))
            assert listed.offsets == tuple(offsets) and listed.cookies == cookies
            assert listed.array("ref_ctr_offsets") == array.array("Q", [0, 0, 0])
            assert open_fds() == before  # reading by id closed what it opened; the infos hold no fd
            eager = link.info()
            assert isinstance(eager, UprobeMultiLinkInfo)
            assert eager == listed and eager.to_dict() == listed.to_dict()
            assert pickle.loads(pickle.dumps(listed)) == listed
            with pytest.raises(ValueError, match="no array 'addrs'"):
                listed.array("addrs")
            (again,) = [i for i in bpflink.links() if i.id == link.id]
            for fresh in (again, link.info()):
                with ThreadPoolExecutor(4) as pool:  # first reads at once: one tuple for all, the right one
                    got = list(pool.map(lambda _, f=fresh: f.cookies, range(8)))  # type: ignore[attr-defined]
                assert got == [cookies] * 8 and all(g is got[0] for g in got)
        _gone(link.id)
        assert (listed.offsets, listed.cookies) == (tuple(offsets), cookies)  # read before: kept
        assert eager.offsets == tuple(offsets) and eager.array("cookies") == array.array("Q", cookies)
        assert repr(listed).startswith(f"UprobeMultiLinkInfo(type=<LinkType.UPROBE_MULTI: {LinkType.UPROBE_MULTI}>,")
        assert f"offsets={tuple(offsets)!r}," in repr(listed)
        assert "offsets=<not read: " in repr(unread) and f"link {link.id} was released" in repr(unread)  # no raise
        with pytest.raises(FileNotFoundError, match=f"link {link.id} was released after it was listed"):
            unread.offsets  # noqa: B018
        assert unread.count == 3  # what listing read stays readable


def test_pid_filter_counts_only_that_process(obj: Path, bins: Binaries) -> None:
    procs = [subprocess.Popen([str(bins.pie), "3", "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        with load(obj, "uprobe_multi_entry") as prog, \
                link_create(prog, None, MULTI, opts.UprobeMulti(bins.pie, symbols=FUNCS, cookies=[1, 2, 3],
                                                                pid=procs[0].pid)):
            for p in procs:  # both run the probed functions, only the first one is watched
                p.communicate("go\n", timeout=30)
                assert p.returncode == 0
            assert [hits(prog, c) for c in (1, 2, 3)] == [3 * n for n in CALLS]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_return_probes_see_return_values(obj: Path, bins: Binaries) -> None:
    with load(obj, "uprobe_multi_return") as prog, \
            link_create(prog, None, MULTI, opts.UprobeMulti(bins.pie, symbols=FUNCS, cookies=[1, 2, 3],
                                                            retprobe=True)):
        total = run(bins.pie, 2)
        assert [hits(prog, c | RETURN) for c in (1, 2, 3)] == [2 * n for n in CALLS]
        assert hits(prog, 1) == 0  # no entry runs
        # the last return value of each function: the running sum after its loop
        assert [value(prog, c) for c in (1, 2, 3)] == [2, 2 + 2 * 2 * 2, total]


def test_symbols_in_a_shared_library(obj: Path, bins: Binaries) -> None:
    with load(obj, "uprobe_multi_entry") as prog, \
            link_create(prog, None, MULTI, opts.UprobeMulti(bins.lib, symbols=["bpflink_lib_fn"], cookies=[9])):
        run(bins.with_lib, 3)
        assert hits(prog, 9) == 3
        run(bins.pie, 3)  # does not map the library
        assert hits(prog, 9) == 3


def test_uprobe_session_runs_entry_and_return(bpf_objects: dict[str, Path], bins: Binaries) -> None:
    try:
        prog = load(bpf_objects["trace_session"], "uprobe_session")
        link = link_create(prog, None, SESSION, opts.UprobeMulti(bins.pie, symbols=FUNCS, cookies=[1, 2, 3],
                                                                 session=True))
    except OSError as exc:
        unsupported("uprobe_session", exc)
    with prog, link:
        total = run(bins.pie, 2)
        assert [hits(prog, c | ENTRY) for c in (1, 2, 3)] == [2 * n for n in CALLS]
        # entry returned 0 for cookies 1 and 3 (return runs), 1 for cookie 2 (return skipped)
        assert [hits(prog, c | RETURN) for c in (1, 2, 3)] == [2, 0, 6]
        assert value(prog, 3) == total


def test_kernel_errors_missing_pid_and_bad_offset(obj: Path, bins: Binaries) -> None:
    with load(obj, "uprobe_multi_entry") as prog:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with pytest.raises(ProcessLookupError, match="no process"):
            link_create(prog, None, MULTI, opts.UprobeMulti(bins.pie, symbols=FUNCS[:1], pid=dead.pid))
        size = os.path.getsize(bins.pie)
        with pytest.raises(OSError) as info:  # past the end of the file: the kernel refuses the offset
            link_create(prog, None, MULTI, opts.UprobeMulti(bins.pie, offsets=[size + 4096])).close()
        assert info.value.errno in (errno.EINVAL, errno.ENXIO, errno.EFAULT), info.value


# --- validation: before any syscall -------------------------------------------------------------------------
@pytest.mark.hostonly
def test_offsets_xor_symbols(bins: Binaries) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        opts.UprobeMulti(bins.pie, offsets=[1], symbols=["main"])
    with pytest.raises(ValueError, match="exactly one"):
        opts.UprobeMulti(bins.pie)


@pytest.mark.hostonly
@pytest.mark.parametrize("name", ["cookies", "ref_ctr_offsets"])
def test_array_lengths_must_match(bins: Binaries, name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} must hold as many entries as there are probes \\(2\\), got 3"):
        opts.UprobeMulti(bins.pie, offsets=[1, 2], **{name: [1, 2, 3]})  # type: ignore[arg-type]


@pytest.mark.hostonly
@pytest.mark.parametrize("count", [0, CAP + 1])
def test_count_limits(bins: Binaries, count: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.1048576 entries"):
        opts.UprobeMulti(bins.pie, offsets=array.array("Q", [0x1000]) * count)


@pytest.mark.hostonly
def test_cap_is_accepted(bins: Binaries) -> None:
    built = opts.UprobeMulti(bins.pie, offsets=array.array("Q", [0x1000]) * CAP, cookies=bytes(8 * CAP))
    b = built.build(MULTI)
    assert b.ptr.uprobe_multi.cnt == CAP


@pytest.mark.hostonly
@pytest.mark.parametrize("bad", [[-1], [1 << 64], array.array("b", [-1]), array.array("q", [5, -5])])
def test_offsets_out_of_range(bins: Binaries, bad: object) -> None:
    with pytest.raises(ValueError):
        opts.UprobeMulti(bins.pie, offsets=bad)


@pytest.mark.hostonly
@pytest.mark.parametrize("bad", [["1"], [1.5], "12", 7, {1, 2}, array.array("d", [1.0]), [True]])
def test_offsets_wrong_types(bins: Binaries, bad: object) -> None:
    with pytest.raises(TypeError):
        opts.UprobeMulti(bins.pie, offsets=bad)


@pytest.mark.hostonly
def test_cookie_range(bins: Binaries) -> None:
    with pytest.raises(ValueError, match="cookies"):
        opts.UprobeMulti(bins.pie, offsets=[1], cookies=[1 << 64])
    with pytest.raises(ValueError, match="multiple of 8 bytes"):
        opts.UprobeMulti(bins.pie, offsets=[1], cookies=b"\x01")


@pytest.mark.hostonly
def test_path_checks(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        opts.UprobeMulti(tmp_path / "missing", offsets=[1])
    with pytest.raises(ValueError, match="regular file"):
        opts.UprobeMulti(tmp_path, offsets=[1])
    with pytest.raises(ValueError, match="NUL"):
        opts.UprobeMulti("a\0b", offsets=[1])
    with pytest.raises(TypeError, match="path"):
        opts.UprobeMulti(3, offsets=[1])  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_relative_path_is_made_absolute(bins: Binaries, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(bins.pie.parent)
    b = opts.UprobeMulti(bins.pie.name, symbols=FUNCS[:1]).build(MULTI)
    c = b.ptr.uprobe_multi
    from bpflink import lowlevel

    assert lowlevel.ffi.string(c.path).decode() == str(bins.pie)


@pytest.mark.hostonly
def test_symbols_checks(bins: Binaries) -> None:
    with pytest.raises(ValueError, match="no symbol 'bpflink_nope'"):
        opts.UprobeMulti(bins.pie, symbols=["bpflink_nope"])
    with pytest.raises(TypeError):
        opts.UprobeMulti(bins.pie, symbols="main")
    with pytest.raises(TypeError):
        opts.UprobeMulti(bins.pie, symbols=[b"main"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        opts.UprobeMulti(bins.pie, symbols=[""])


@pytest.mark.hostonly
@pytest.mark.parametrize(("field", "bad", "exc"), [("pid", 0, ValueError), ("pid", -1, ValueError),
                                                  ("pid", 1 << 31, ValueError), ("pid", "1", TypeError),
                                                  ("retprobe", 1, TypeError), ("session", "yes", TypeError)])
def test_scalar_checks(bins: Binaries, field: str, bad: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=field):
        opts.UprobeMulti(bins.pie, offsets=[1], **{field: bad})  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_attach_type_and_session_mode(bins: Binaries) -> None:
    with pytest.raises(TypeError, match=r"UprobeMulti.*CGROUP_INET_EGRESS"):
        opts.UprobeMulti(bins.pie, offsets=[1]).build(AttachType.CGROUP_INET_EGRESS)
    with pytest.raises(TypeError, match=r"UprobeMulti.*TRACE_KPROBE_MULTI"):
        opts.UprobeMulti(bins.pie, offsets=[1]).build(AttachType.TRACE_KPROBE_MULTI)
    with pytest.raises(TypeError, match=r"session=True.*TRACE_UPROBE_SESSION.*not TRACE_UPROBE_MULTI"):
        opts.UprobeMulti(bins.pie, offsets=[1], session=True).build(MULTI)
    with pytest.raises(TypeError, match=r"session=False.*TRACE_UPROBE_MULTI.*not TRACE_UPROBE_SESSION"):
        opts.UprobeMulti(bins.pie, offsets=[1], session=False).build(SESSION)
    with pytest.raises(ValueError, match="retprobe"):
        opts.UprobeMulti(bins.pie, offsets=[1], retprobe=True).build(SESSION)
    with pytest.raises(ValueError, match="retprobe"):
        opts.UprobeMulti(bins.pie, offsets=[1], retprobe=True, session=True)
    b = opts.UprobeMulti(bins.pie, offsets=[1]).build(SESSION)
    assert b.ptr.uprobe_multi.cnt == 1
