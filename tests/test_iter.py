"""Iterator links: ``opts.Iter`` (task filters, map, cgroup walk) and reading them with ``Link.read_iter()``/
``Link.open_iter()``. The programs (tests/bpf/iter_dump.bpf.c) print one line per object; the lines read back
prove the iterator ran over what the opts asked for."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import AttachType, Link, LinkType, Map, MapType, Object, Program, ProgType, asm, link_create, opts
from bpflink.features import FEATURES, kernel_version
from bpflink.info import IterLinkInfo
from bpflink.opts import CgroupIterOrder
from honest_skips import unsupported

ITER = AttachType.TRACE_ITER


@pytest.fixture(scope="module")
def iter_obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    """iter_dump; before the cgroup iterator (6.1) its dump_cgroup cannot load: then dump_task only."""
    try:
        obj = Object.open(bpf_objects["iter_dump"])
    except OSError as exc:
        obj = Object.open(bpf_objects["iter_dump"], programs=["dump_task"])
        obj.cgroup_refusal = exc  # type: ignore[attr-defined]
    with obj:
        yield obj


def tasks(link: Link) -> list[tuple[int, int, str]]:
    """(tgid, pid, comm) per line of a dump_task walk."""
    out = []
    for line in link.read_iter(text=True).splitlines():
        tgid, pid, comm = line.split(" ", 2)
        out.append((int(tgid), int(pid), comm))
    return out


@contextlib.contextmanager
def sleeper() -> Iterator[int]:
    """A child process running ``sleep`` (its comm already changed by exec), killed afterwards."""
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{child.pid}/comm").read_text().strip() != "sleep" and time.monotonic() < deadline:
                time.sleep(0.005)
            yield child.pid
        finally:
            child.kill()


def test_task_iterator_lists_this_process(iter_obj: Object) -> None:
    comm = Path("/proc/self/comm").read_text().strip()
    with iter_obj.program("dump_task") as prog, link_create(prog, None, ITER) as link:
        seen = tasks(link)
        assert (os.getpid(), os.getpid(), comm) in seen
        assert len({tgid for tgid, _, _ in seen}) > 1  # other processes too
        # every walk starts anew and sees the processes alive at that moment
        with sleeper() as pid:  # waits until exec changed the child's comm: no race with fork
            assert (pid, pid, "sleep") in tasks(link)
        info = link.info()
        assert isinstance(info, IterLinkInfo) and info.type == LinkType.ITER and info.target_name == "task"


def test_task_iterator_pid_filter_yields_only_that_process(iter_obj: Object) -> None:
    with sleeper() as pid, iter_obj.program("dump_task") as prog:
        try:
            link = link_create(prog, None, ITER, opts.Iter(pid=pid))
        except OSError as exc:
            unsupported("iter_task_filter", exc)
        with link:
            assert tasks(link) == [(pid, pid, "sleep")]
            info = link.info()
            assert isinstance(info, IterLinkInfo) and info.pid == pid
        pidfd = os.pidfd_open(pid)
        try:
            with link_create(prog, None, ITER, opts.Iter(pid_fd=pidfd)) as link:
                assert tasks(link) == [(pid, pid, "sleep")]
        finally:
            os.close(pidfd)


def test_task_iterator_tid_filter_yields_one_thread(iter_obj: Object) -> None:
    started, stop = threading.Event(), threading.Event()
    tid: list[int] = []

    def worker() -> None:
        tid.append(threading.get_native_id())
        started.set()
        stop.wait(30)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        started.wait(10)
        with iter_obj.program("dump_task") as prog:
            try:
                link = link_create(prog, None, ITER, opts.Iter(tid=tid[0]))
            except OSError as exc:
                unsupported("iter_task_filter", exc)
            with link:
                seen = tasks(link)
        if len(seen) > 1 and kernel_version() < FEATURES["iter_task_filter"].min_kernel:
            # measured on 5.10: the kernel takes the link info and walks every task (no .task in the union)
            unsupported("iter_task_filter", OSError(errno.EOPNOTSUPP, "the kernel ignored the tid filter"))
        assert [(tgid, pid) for tgid, pid, _ in seen] == [(os.getpid(), tid[0])]
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def map_iter_prog(bpf_objects: dict[str, Path], iter_obj: Object) -> Iterator[Program]:
    """dump_map, or a skip when this kernel refuses map element iterators while it loads the task iterator."""
    try:
        prog = Program.from_object(bpf_objects["iter_map"], "dump_map")
    except PermissionError as exc:
        with iter_obj.program("dump_task"):  # loaded: iterators as such work here, so the refusal is specific
            pass
        unsupported("iter", exc, extra_reason="this kernel refuses to load bpf_map_elem iterator programs (EPERM) "
                    "while it loads task and cgroup iterators")
    with prog:
        yield prog


def test_map_iterator_dumps_the_map_the_test_filled(map_iter_prog: Program) -> None:
    with Map.create(MapType.HASH, key_size=4, value_size=8, max_entries=16, name="iter_fill") as m:
        filled = {k: k * 1000 + 7 for k in (1, 5, 9, 13)}
        for k, v in filled.items():
            m.update(k, v)
        with link_create(map_iter_prog, None, ITER, opts.Iter(map=m)) as link:
            lines = link.read_iter(text=True).splitlines()
            assert {int(k): int(v) for k, v in (ln.split() for ln in lines)} == filled
            m.delete(5)  # the next walk sees the map as it is then
            with link.open_iter() as f:
                assert len(f.read().splitlines()) == 3
            info = link.info()
            assert isinstance(info, IterLinkInfo) and info.target_name == "bpf_map_elem"


def test_map_iterator_refuses_a_map_with_small_values(map_iter_prog: Program) -> None:
    # the program reads 8-byte values: the kernel checks that against the map at link_create
    with Map.create(MapType.HASH, key_size=4, value_size=4, max_entries=4) as m, \
            pytest.raises(OSError) as info:
        link_create(map_iter_prog, None, ITER, opts.Iter(map=m)).close()
    assert info.value.errno == errno.EACCES


def test_cgroup_iterator_self_and_ancestors(iter_obj: Object, cgroup: Path) -> None:
    refused = getattr(iter_obj, "cgroup_refusal", None)
    if refused is not None:
        unsupported("iter_cgroup", refused)
    child = cgroup / "child"
    child.mkdir()
    try:
        with iter_obj.program("dump_cgroup") as prog:
            with link_create(prog, None, ITER, opts.Iter(cgroup=child, order=CgroupIterOrder.SELF_ONLY)) as link:
                ((cg_id, _level),) = (ln.split() for ln in link.read_iter(text=True).splitlines())
                assert int(cg_id) == child.stat().st_ino  # a cgroup v2 id is its directory's inode number
            by_id = opts.Iter(cgroup_id=child.stat().st_ino, order=CgroupIterOrder.ANCESTORS_UP)
            with link_create(prog, None, ITER, by_id) as link:
                rows = [(int(a), int(b)) for a, b in (ln.split() for ln in link.read_iter(text=True).splitlines())]
            assert [r[0] for r in rows[:2]] == [child.stat().st_ino, cgroup.stat().st_ino]
            assert [r[1] for r in rows] == sorted((r[1] for r in rows), reverse=True)  # up to the root (level 0)
            assert rows[-1][1] == 0
            fd = os.open(cgroup, os.O_RDONLY)
            try:
                walk = opts.Iter(cgroup=fd, order=CgroupIterOrder.DESCENDANTS_PRE)
                with link_create(prog, None, ITER, walk) as link:
                    ids = [int(ln.split()[0]) for ln in link.read_iter(text=True).splitlines()]
                assert ids == [cgroup.stat().st_ino, child.stat().st_ino]
            finally:
                os.close(fd)
    finally:
        child.rmdir()


def test_read_iter_on_a_non_iterator_link_is_a_clear_error(cgroup: Path) -> None:
    egress = AttachType.CGROUP_INET_EGRESS
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=egress) as prog, \
            link_create(prog, cgroup, egress) as link, pytest.raises(OSError, match="iterator links"):
        link.read_iter()


@pytest.mark.hostonly
@pytest.mark.parametrize(("kwargs", "exc", "words"), [
    ({"pid": 1, "tid": 2}, ValueError, "at most one"),
    ({"map": 3, "pid": 1}, ValueError, "one kind"),
    ({"pid": 0}, ValueError, "pid"),
    ({"tid": True}, TypeError, "int"),
    ({"map": "x"}, TypeError, "map"),
    ({"cgroup_id": 5}, ValueError, "order"),
    ({"cgroup_id": 5, "cgroup": "/x", "order": CgroupIterOrder.SELF_ONLY}, ValueError, "not both"),
    ({"cgroup_id": 5, "order": 99}, ValueError, "CgroupIterOrder"),
    ({"pid": 1, "order": CgroupIterOrder.SELF_ONLY}, ValueError, "cgroup"),
])
def test_iter_bad_input_before_the_syscall(kwargs: dict[str, object], exc: type[Exception], words: str) -> None:
    with pytest.raises(exc, match=words):
        opts.Iter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.hostonly
def test_iter_opts_fill_the_union() -> None:
    from bpflink.lowlevel import NULL, ffi

    built = opts.Iter().build(ITER)
    assert built.ptr.iter_info == NULL and built.ptr.iter_info_len == 0  # no parameters: the whole walk
    built = opts.Iter(tid=77).build(ITER)
    assert built.ptr.iter_info.task.tid == 77 and built.ptr.iter_info_len == ffi.sizeof("union bpf_iter_link_info")
    built = opts.Iter(cgroup_id=9, order=CgroupIterOrder.ANCESTORS_UP).build(ITER)
    info = built.ptr.iter_info
    assert (info.cgroup.cgroup_id, info.cgroup.order, info.cgroup.cgroup_fd) == (9, CgroupIterOrder.ANCESTORS_UP, 0)


def test_iter_opts_are_for_iterators_only(iter_obj: Object) -> None:
    with iter_obj.program("dump_task") as prog, pytest.raises(TypeError, match="Iter opts cannot"):
        link_create(prog, "/proc/self/ns/net", AttachType.SK_LOOKUP, opts.Iter(pid=1))

