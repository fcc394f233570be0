"""USDT probes on the real kernel: Debian's /usr/bin/python3.11 (function__entry counted exactly from its
arguments), a C program with <sys/sdt.h> probes built as a PIE executable and as a shared library (one probe with
three call sites, a semaphore-guarded probe, argument values in registers, memory and constants), the pid filter,
the perf-event path, spec maps byte-equal to libbpf's own attach; then the note parser on malformed ELF files,
argument decoding for x86-64 and arm64, and ``bpflink usdt list``."""

from __future__ import annotations

import errno
import filecmp
import glob
import hashlib
import json
import os
import re
import resource
import shutil
import struct
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, LinkType, Program
from bpflink.features import kernel_version
from bpflink.usdt import (
    SPEC_SIZE,
    UsdtLink,
    attach_section,
    attach_usdt,
    decode_args,
    encode_spec,
    probes,
)
from conftest import open_fds
from honest_skips import unsupported
from tracehelp import hits, value

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = Path("/usr/bin/python3.11")
TAG_ARGCNT, N = 3 << 32, 20


def tag_arg(i: int) -> int:
    return (4 + i) << 32


# --- the probed programs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bins:
    exe: Path  # PIE, -O2, probes linked in
    lib: Path  # libbpflinkusdt.so, -O0 (arguments in memory)
    exe_lib: Path  # PIE using the library
    libbpf: Path  # tests/usdt/libbpf_usdt.c: libbpf's own attach


def _sdt_header() -> None:
    if not glob.glob("/usr/include/sys/sdt.h") + glob.glob("/usr/include/*/sys/sdt.h"):  # not **: 9p in guests
        pytest.fail("<sys/sdt.h> is missing: run scripts/setup (apt-get install systemtap-sdt-dev)")


@pytest.fixture(scope="module")
def bins(tmp_path_factory: pytest.TempPathFactory) -> Bins:
    return build_bins(tmp_path_factory.mktemp("usdt"))


def build_bins(out: Path) -> Bins:
    """Compiled in ``out`` once per source/compiler/libbpf and cached in build/usdt-bins/<key>/: the QEMU
    guests, read-only, reuse the host's instead of running gcc under TCG (scripts/test-vm builds it first)."""
    src, lib = HERE / "usdt", ROOT / "build" / "libbpf"
    key = hashlib.sha256(subprocess.run(["gcc", "--version"], capture_output=True).stdout)
    for path in (*sorted(src.glob("*.c")), lib / "lib" / "libbpf.a"):
        key.update(path.name.encode() + b"\0" + path.read_bytes())
    cached = ROOT / "build" / "usdt-bins" / key.hexdigest()[:16]
    names = ("usdt_target", "libbpflinkusdt.so", "usdt_target_lib", "libbpf_usdt")
    if all((cached / n).exists() for n in names):
        return Bins(*(cached / n for n in names))
    _sdt_header()
    b = Bins(*(out / n for n in names))

    def cc(*args: str) -> None:
        res = subprocess.run(["gcc", *args], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr

    cc("-O2", "-fPIE", "-pie", "-o", str(b.exe), str(src / "usdt_target.c"), str(src / "usdt_probes.c"))
    cc("-O0", "-shared", "-fPIC", "-o", str(b.lib), str(src / "usdt_probes.c"))
    cc("-O2", "-fPIE", "-pie", "-o", str(b.exe_lib), str(src / "usdt_target.c"), f"-L{out}", "-lbpflinkusdt",
       "-Wl,-rpath,$ORIGIN")
    cc("-O2", f"-I{lib / 'include'}", "-o", str(b.libbpf), str(src / "libbpf_usdt.c"), str(lib / "lib" / "libbpf.a"),
       "-lelf", "-lz")
    tmp = cached.with_suffix(f".tmp{os.getpid()}")
    try:  # publish whole or not at all; a read-only tree (guests) or a concurrent run keeps its own
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(out, tmp)
        os.rename(tmp, cached)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return b
    return Bins(*(cached / n for n in names))


def run(binary: Path, n: int = N) -> int:
    """Run the C target; how often its guarded probe's semaphore was up."""
    return int(subprocess.run([str(binary), str(n)], check=True, capture_output=True, text=True,
                              timeout=30).stdout)


def expected_sums(n: int) -> tuple[int, int, int]:
    """Sums over the three sites of bpflinkt:site of arguments 0, 1, 2 for i = 1..n (see usdt_probes.c)."""
    s = n * (n + 1) // 2
    return 3 * s, 7 * n + 98 * n - s, 2000 * s - 2 * n


def signed(raw: int | None) -> int | None:
    return None if raw is None else raw - (1 << 64) if raw >> 63 else raw


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["usdt_probe"]


def attach(prog: Program, *args: object, **kwargs: object) -> UsdtLink:
    try:
        return attach_usdt(prog, *args, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        unsupported("uprobe_multi" if prog.expected_attach_type == AttachType.TRACE_UPROBE_MULTI else "perf_event",
                    exc)


def check_site_counts(prog: Program, cookie: int, n: int = N) -> None:
    assert hits(prog, cookie) == 3 * n
    assert value(prog, cookie | TAG_ARGCNT) == 3
    got = tuple(signed(value(prog, cookie | tag_arg(i))) for i in range(3))
    assert got == expected_sums(n)


# --- python3.11 ---------------------------------------------------------------------------------------------------
PY_SCRIPT = """
import sys
sys.stdin.readline()
sys.settrace(lambda *a: None)   # CPython 3.11 fires function__entry on its tracing path only
def bpflink_usdt_target():
    pass
for _ in range({n}):
    bpflink_usdt_target()
"""


def _py_count(prog: Program, script: Path, func: str) -> int:
    # bpf_probe_read_user_str keeps at most 63 bytes and the NUL
    key = script.as_posix().encode()[:63].ljust(64, b"\0") + func.encode()[:63].ljust(64, b"\0")
    return prog.maps["py_calls"].lookup_int(key)


def _python_runs(tmp_path: Path, link_factory: object, prog: Program, n: int) -> int:
    script = tmp_path / "py_usdt.py"
    script.write_text(PY_SCRIPT.format(n=n))
    proc = subprocess.Popen([str(PYTHON), str(script)], stdin=subprocess.PIPE, text=True)
    try:
        prog.maps["cfg"].update(0, proc.pid)  # only this interpreter: others on the machine may run python3.11
        with link_factory(proc.pid):  # type: ignore[operator]
            proc.communicate("go\n", timeout=60)
            assert proc.returncode == 0
            return _py_count(prog, script, "bpflink_usdt_target")
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def python311() -> Path:
    if not PYTHON.exists():
        pytest.skip(f"{PYTHON} is not installed (Debian's python3.11 carries the python:* USDT probes)")
    return PYTHON


def test_python_function_entry_counts_exactly_n(obj: Path, python311: Path, tmp_path: Path) -> None:
    with Program.from_object(obj, "py_entry") as prog:
        got = _python_runs(tmp_path, lambda pid: attach(prog, python311, "python", "function__entry"), prog, 57)
    assert got == 57


def test_python_section_attach(obj: Path, python311: Path, tmp_path: Path) -> None:
    with Program.from_object(obj, "py_entry_auto") as prog:
        section = "usdt//usr/bin/python3.11:python:function__entry"

        def make(pid: int) -> UsdtLink:
            link = attach_section(prog, section)
            assert link is not None
            return link

        assert _python_runs(tmp_path, make, prog, 31) == 31


def test_python_object_attach(obj: Path, python311: Path, tmp_path: Path) -> None:
    """Object.attach() of a SEC("usdt/...") program fills the object's spec maps and fires exactly."""
    with bpflink.Object.open(obj) as o, o.program("py_entry_auto") as prog:
        assert _python_runs(tmp_path, lambda pid: o.attach("py_entry_auto"), prog, 23) == 23


def test_python_probe_list_matches_readelf(python311: Path) -> None:
    found = {f"{p.provider}:{p.name}": p for p in probes(python311)}
    assert "python:function__entry" in found
    entry = found["python:function__entry"]
    assert entry.semaphore and entry.sites[0].semaphore_offset
    assert [a.size for a in entry.sites[0].args or ()] == [8, 8, 4]
    assert _readelf_notes(python311) == sorted((p.provider, p.name, s.address, s.semaphore, s.arg_spec)
                                               for p in found.values() for s in p.sites)


def _readelf_notes(path: Path) -> list[tuple[str, str, int, int, str]]:
    text = subprocess.run(["readelf", "-n", str(path)], check=True, capture_output=True, text=True).stdout
    out, cur = [], {}
    for line in text.splitlines():
        key, _, val = line.strip().partition(": ")
        if key in ("Provider", "Name"):
            cur[key] = val
        elif key == "Location":
            parts = dict(p.strip().split(": ") for p in line.strip().split(","))
            cur["loc"], cur["sema"] = int(parts["Location"], 16), int(parts["Semaphore"], 16)
        elif key == "Arguments" or line.strip() == "Arguments:":
            out.append((cur["Provider"], cur["Name"], cur["loc"], cur["sema"], val))
    return sorted(out)


# --- the C program ------------------------------------------------------------------------------------------------
def test_pie_sites_arguments_and_semaphore(obj: Path, bins: Bins) -> None:
    assert run(bins.exe) == 0  # no tracer: the guarded probe's semaphore is down
    with Program.from_object(obj, "usdt_generic") as prog:
        prog.maps["cfg"].update(0, 0)
        with attach(prog, bins.exe, "bpflinkt", "site", cookie=11) as site, \
                attach(prog, bins.exe, "bpflinkt", "guarded", cookie=22) as guarded:
            assert len(site.sites) == 3 and len(guarded.sites) == 1
            assert run(bins.exe) == N  # the kernel raised the semaphore: *_ENABLED() is true
            check_site_counts(prog, 11)
            assert hits(prog, 22) == N
            assert signed(value(prog, 22 | tag_arg(0))) == N * (N + 1) // 2
            info = site.info()
            # libbpf loads SEC("usdt") for uprobe_multi where the kernel has it (6.6+); 6.1 takes perf events
            assert site.mode == ("uprobe_multi" if kernel_version() >= (6, 6) else "perf_event")
            if site.mode == "uprobe_multi":
                assert info.type == LinkType.UPROBE_MULTI and len(info.offsets) == 3  # type: ignore[attr-defined]
            else:
                assert info.type == LinkType.PERF_EVENT and len(site.links) == 3
        assert run(bins.exe) == 0  # detached: the semaphore is down again


def test_shared_library_arguments_in_memory(obj: Path, bins: Bins) -> None:
    assert any("(%rbp)" in s.arg_spec for p in probes(bins.lib) for s in p.sites)  # -O0: memory operands
    with Program.from_object(obj, "usdt_generic") as prog, \
            attach(prog, bins.lib, "bpflinkt", "site", cookie=5), attach(prog, bins.lib, "bpflinkt", "guarded",
                                                                         cookie=6):
        assert run(bins.exe_lib) == N
        check_site_counts(prog, 5)
        assert hits(prog, 6) == N


def test_pid_filter_and_library_name_from_the_process_maps(obj: Path, bins: Bins) -> None:
    procs = [subprocess.Popen([str(bins.exe_lib), str(N), "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        with Program.from_object(obj, "usdt_generic") as prog, \
                attach(prog, "libbpflinkusdt.so", "bpflinkt", "site", pid=procs[0].pid, cookie=9) as link:
            # the path under the process's root when its device + inode are the mapping's; on overlay/9p trees
            # (the QEMU guests) /proc/PID/maps names another device, and the mapping itself is opened instead
            assert link.binary == f"/proc/{procs[0].pid}/root{bins.lib}" or \
                link.binary.startswith(f"/proc/{procs[0].pid}/map_files/")
            assert filecmp.cmp(link.binary, bins.lib, shallow=False)
            outs = [p.communicate("go\n", timeout=30)[0] for p in procs]
            check_site_counts(prog, 9)  # N calls in each process, only the chosen one counted
        assert [int(o.split()[-1]) for o in outs] == [0, 0]  # guarded was not attached: its semaphore stayed down
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_binary_only_inside_a_private_mount_namespace(obj: Path, bins: Bins, tmp_path: Path) -> None:
    """The target runs from a tmpfs mounted only in its own mount namespace: pid + in-namespace path finds it."""
    hidden = tmp_path / "nsonly"
    hidden.mkdir()
    script = f"mount -t tmpfs none {hidden} && cp {bins.exe} {hidden}/t && exec {hidden}/t {N} wait"
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr
        assert not (hidden / "t").exists()  # not on the host's side
        with Program.from_object(obj, "usdt_generic") as prog, \
                attach(prog, hidden / "t", "bpflinkt", "site", pid=proc.pid, cookie=8) as link, \
                attach(prog, hidden / "t", "bpflinkt", "guarded", pid=proc.pid, cookie=10):
            assert link.binary == f"/proc/{proc.pid}/root{hidden}/t"
            out = proc.communicate("go\n", timeout=30)[0]
            check_site_counts(prog, 8)
            assert int(out.split()[-1]) == N == hits(prog, 10)
    finally:
        proc.kill()
        proc.wait()


def test_many_containers_attached_once_per_file(obj: Path, bins: Bins, tmp_path: Path) -> None:
    """pids=[...]: three "containers" (private mount namespaces), two running one image (the same file bind-mounted)
    and one a copy: attached once per (device, inode), every process of those files fires; with pid_filter=True one
    attach per pid, only those fire. The target is a PIE: before 5.15 (no BPF cookies) each process's load base
    has its own entries in the IP -> spec id map (another program instance for the filtered attach: one address
    has one spec per program there)."""
    image, other, ctr = tmp_path / "image", tmp_path / "other", tmp_path / "ctr"
    for d in (image, other, ctr):
        d.mkdir()
    shutil.copy(bins.exe, image / "t")
    shutil.copy(bins.exe, other / "t")  # same bytes, another file
    app = f"{ctr}/t"
    procs = [subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               f"mount --bind {src} {ctr} && exec {app} {N} wait"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for src in (image, image, other)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n", p.stderr
        assert not os.path.exists(app)  # only inside their namespaces
        pids = [p.pid for p in procs]
        with Program.from_object(obj, "usdt_generic") as prog, Program.from_object(obj, "usdt_generic") as prog2:
            prog.maps["cfg"].update(0, 0)
            prog2.maps["cfg"].update(0, 0)
            try:
                group = attach_usdt(prog, app, "bpflinkt", "site", pids=pids, cookie=12)
            except OSError as exc:
                unsupported("uprobe_multi" if prog.expected_attach_type == AttachType.TRACE_UPROBE_MULTI
                            else "perf_event", exc)
            with group, attach_usdt(prog2, app, "bpflinkt", "site", pids=[pids[0], pids[2]], cookie=13,
                                    pid_filter=True) as filtered:
                keys = {f"{os.stat(d / 't').st_dev}:{os.stat(d / 't').st_ino}" for d in (image, other)}
                assert set(group.names()) == keys and len(group) == 2
                assert all(isinstance(ln, UsdtLink) for ln in group)
                assert set(filtered.names()) == {str(pids[0]), str(pids[2])}
                for p in procs:
                    p.communicate("go\n", timeout=30)
                assert hits(prog, 12) == 3 * 3 * N  # three sites, three processes
                assert hits(prog2, 13) == 3 * 2 * N  # only the two filtered pids
            with pytest.raises(ValueError, match="not both"):
                attach_usdt(prog, app, "bpflinkt", "site", pid=pids[0], pids=pids)  # type: ignore[call-overload]
            with pytest.raises(ValueError, match="pids is empty"):
                attach_usdt(prog, app, "bpflinkt", "site", pids=[])
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_pids_shared_library_attached_once_counts_every_process(obj: Path, bins: Bins) -> None:
    """Two processes mapping one shared library at (with ASLR) different addresses, and a third that has not
    mapped it: pids=[...] attaches once (one group member) and both mapping processes' calls are counted with
    their arguments (before 5.15: one IP -> spec id entry per site and load base; the third process is left out,
    and alone it is refused)."""
    procs = [subprocess.Popen([str(bins.exe_lib), str(N), "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    idle = subprocess.Popen(["sleep", "60"])
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        with Program.from_object(obj, "usdt_generic") as prog:
            prog.maps["cfg"].update(0, 0)
            try:
                group = attach_usdt(prog, bins.lib, "bpflinkt", "site", pids=[p.pid for p in procs] + [idle.pid],
                                    cookie=14)
            except OSError as exc:
                unsupported("uprobe_multi" if prog.expected_attach_type == AttachType.TRACE_UPROBE_MULTI
                            else "perf_event", exc)
            with group:
                assert len(group) == 1
                (link,) = group
                if link.mode == "perf_event_ioctl":  # one entry per site and mapping process (distinct load bases)
                    bases = {_load_base(p.pid, bins.lib) for p in procs}
                    assert len(list(prog.maps["__bpf_usdt_ip_to_spec_id"].keys())) == 3 * len(bases)
                for p in procs:
                    p.communicate("go\n", timeout=30)
                assert hits(prog, 14) == 2 * 3 * N  # three sites, i = 1..N in each process
                got = tuple(signed(value(prog, 14 | tag_arg(i))) for i in range(3))
                assert got == tuple(2 * x for x in expected_sums(N))
            if link.mode == "perf_event_ioctl":
                with pytest.raises(ValueError, match=f"none of processes {idle.pid} has mapped"):
                    attach_usdt(prog, bins.lib, "bpflinkt", "site", pids=[idle.pid])
    finally:
        for p in [*procs, idle]:
            p.kill()
            p.wait()


def _load_base(pid: int, path: Path) -> int:
    """Where ``pid`` mapped ``path``'s first byte: its mapping at file offset 0 whose file (stat through
    /proc/PID/map_files, which also holds on overlay and 9p trees) is ``path``."""
    st = path.stat()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 6 and fields[4] != "0" and int(fields[2], 16) == 0:
                mst = os.stat(f"/proc/{pid}/map_files/{fields[0]}")
                if (mst.st_dev, mst.st_ino) == (st.st_dev, st.st_ino):
                    return int(fields[0].split("-")[0], 16)
    raise AssertionError(f"{path} is not mapped by {pid}")


def test_perf_event_path(obj: Path, bins: Bins) -> None:
    """A program loaded without uprobe_multi's attach type (SEC("uprobe")) takes the path 6.1 kernels take."""
    fds = open_fds()
    with Program.from_object(obj, "usdt_generic_perf") as prog:
        with attach(prog, bins.exe, "bpflinkt", "site", cookie=3) as link:
            assert link.mode == "perf_event" and link.attach_type == AttachType.PERF_EVENT
            assert len(link.links) == 3 and {i.type for i in link.infos()} == {LinkType.PERF_EVENT}
            assert len({i.id for i in link.infos()}) == 3
            with pytest.raises(ValueError, match="perf_event links"):
                link.pin("/sys/fs/bpf/bpflink-usdt-never")
            run(bins.exe)
            check_site_counts(prog, 3)
        assert link.closed and all(part.closed for part in link.links)
    assert open_fds() == fds


def test_spec_maps_equal_libbpfs_own_attach(obj: Path, bins: Bins) -> None:
    """libbpf's bpf_program__attach_usdt (C) and ours fill __bpf_usdt_specs with the same bytes and attach the same
    offsets, semaphores and cookies."""
    ref = subprocess.Popen([str(bins.libbpf), str(obj), "usdt_generic", str(bins.exe), "bpflinkt", "site", "77"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert ref.stdout is not None
        lines = []
        while (line := ref.stdout.readline()) not in ("ready\n", ""):
            lines.append(line.split())
        if not lines:  # libbpf refuses a PIE without a pid when the kernel has no BPF cookies (before 5.15)
            unsupported("bpf_cookie", OSError(errno.EOPNOTSUPP, "libbpf's bpf_program__attach_usdt failed on a PIE "
                                              "without a pid"))
        prog_id = int(lines[0][1])
        theirs_specs = {int(w[1]): bytes.fromhex(w[2]) for w in lines[1:]}
        fields = ("offsets", "ref_ctr_offsets", "cookies", "path")
        # read now: a listed link's arrays are fetched by id on first access, and these die with the process
        theirs = [{f: getattr(i, f, None) for f in fields} for i in bpflink.links() if i.prog_id == prog_id]
        ref.communicate("done\n", timeout=30)
    finally:
        ref.kill()
        ref.wait()
    with Program.from_object(obj, "usdt_generic") as prog, attach(prog, bins.exe, "bpflinkt", "site",
                                                                  cookie=77) as link:
        specs = prog.maps["__bpf_usdt_specs"]
        ours_specs = {i: specs.lookup_raw(i) for i in range(3)}
        ours = link.infos()
    assert ours_specs == theirs_specs
    assert len(ours) == len(theirs)
    if link.mode == "uprobe_multi":
        for a, b in zip(ours, theirs):
            for field in fields:
                assert getattr(a, field) == b[field], field


def test_spec_ids_are_reused_after_close(obj: Path, bins: Bins) -> None:
    with Program.from_object(obj, "usdt_generic") as prog:
        specs = prog.maps["__bpf_usdt_specs"]
        with attach(prog, bins.exe, "bpflinkt", "site", cookie=1), attach(prog, bins.exe, "bpflinkt", "guarded",
                                                                          cookie=2):
            cookies = [struct.unpack_from("<Q", specs.lookup_raw(i) or b"", 288)[0] for i in range(5)]
            assert cookies == [1, 1, 1, 2, 0]  # one id per distinct argument spec, as libbpf allocates them
        with attach(prog, bins.exe, "bpflinkt", "site", cookie=4):  # the freed ids come back first
            assert {struct.unpack_from("<Q", specs.lookup_raw(i) or b"", 288)[0] for i in range(3)} == {4}
            run(bins.exe)
            check_site_counts(prog, 4)


def test_concurrent_attaches_share_one_spec_map(obj: Path, bins: Bins) -> None:
    """Four threads attach the same program at once: every attach gets its own spec ids (its own cookie)."""
    with Program.from_object(obj, "usdt_generic") as prog:
        links: list[UsdtLink | None] = [None] * 4
        errors: list[BaseException] = []

        def go(i: int) -> None:
            try:
                links[i] = attach(prog, bins.exe, "bpflinkt", "site", cookie=100 + i)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            if errors and all(isinstance(e, pytest.skip.Exception) for e in errors):
                raise errors[0]  # the honest skip each thread met (attach() skips where the kernel lacks the path)
            assert not errors, errors
            run(bins.exe)
            for i in range(4):
                check_site_counts(prog, 100 + i)
        finally:
            for link in links:
                if link is not None:
                    link.close()


@pytest.mark.hostonly
def test_spec_id_allocator_reuses_and_refuses_beyond_capacity() -> None:
    from bpflink.usdt import _SpecIds

    map_id = -12345  # no kernel map has a negative id: this test's own entry
    first = _SpecIds.take(map_id, 4, 3)
    second = _SpecIds.take(map_id, 4, 1)
    assert first + second == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="holds 4 specs"):
        _SpecIds.take(map_id, 4, 1)
    _SpecIds.give_back(map_id, first)
    assert sorted(_SpecIds.take(map_id, 4, 3)) == [0, 1, 2]
    _SpecIds.give_back(map_id, [0, 1, 2])
    _SpecIds.give_back(map_id, second)
    assert map_id not in _SpecIds._by_map  # all free again: nothing kept per map


def test_attach_errors_name_what_is_wrong(obj: Path, bins: Bins) -> None:
    with Program.from_object(obj, "usdt_generic") as prog:
        with pytest.raises(ValueError, match="no USDT probe bpflinkt:nope; it has bpflinkt:guarded"):
            attach_usdt(prog, bins.exe, "bpflinkt", "nope")
        with pytest.raises(TypeError):
            attach_usdt(prog, bins.exe, "bpflinkt", 3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="Program"):
            attach_usdt(prog.fd, bins.exe, "bpflinkt", "site")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cookie"):
            attach_usdt(prog, bins.exe, "bpflinkt", "site", cookie=-1)
        with pytest.raises(FileNotFoundError):
            attach_usdt(prog, "/nonexistent/bin", "bpflinkt", "site")
        with pytest.raises(FileNotFoundError, match=rf"mount namespace .* of pid {os.getpid()}"):
            attach_usdt(prog, "/nonexistent/bin", "bpflinkt", "site", pid=os.getpid())
        with pytest.raises(ProcessLookupError, match="process"):
            attach_usdt(prog, "/bin/true", "bpflinkt", "site", pid=(1 << 22) + 7)
        with pytest.raises(ValueError, match="usdt/<path>:<provider>:<name>"):
            attach_section(prog, "usdt/onlybinary")
        assert attach_section(prog, "usdt") is None
    with Program.from_object(obj, "usdt_generic") as prog:
        prog.maps.pop("__bpf_usdt_specs").close()
        with pytest.raises(ValueError, match="__bpf_usdt_specs"):
            attach_usdt(prog, bins.exe, "bpflinkt", "site")


# --- listing, decoding, malformed files (no kernel) ---------------------------------------------------------------
@pytest.mark.hostonly
def test_listing_matches_readelf(bins: Bins) -> None:
    for binary in (bins.exe, bins.lib):
        found = probes(binary)
        assert [(p.provider, p.name, len(p.sites)) for p in found] == [("bpflinkt", "site", 3),
                                                                         ("bpflinkt", "guarded", 1)]
        assert all(p.semaphore for p in found)
        assert _readelf_notes(binary) == sorted((p.provider, p.name, s.address, s.semaphore, s.arg_spec)
                                                for p in found for s in p.sites)


def _section_headers(path: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, file offset) of each section, from readelf (not our reader)."""
    text = subprocess.run(["readelf", "-S", "-W", str(path)], check=True, capture_output=True, text=True).stdout
    out = {}
    for m in re.finditer(r"\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s", text):
        out[m.group(1)] = (int(m.group(2), 16), int(m.group(3), 16))
    return out


@pytest.mark.hostonly
def test_32bit_elf_lists_its_probes(tmp_path: Path) -> None:
    """An i386 executable (tests/usdt/usdt32.c: <sys/sdt.h>, freestanding, gcc -m32 + ld -m elf_i386): its notes
    carry 4-byte addresses; every site, semaphore and argument string is listed as readelf reads it, the
    addresses turned into file offsets through its 32-bit program headers."""
    _sdt_header()
    sdt_dirs = sorted({str(Path(p).parent.parent) for p in glob.glob("/usr/include/*/sys/sdt.h")})
    obj, exe = tmp_path / "usdt32.o", tmp_path / "usdt32"
    res = subprocess.run(["gcc", "-m32", "-O1", "-ffreestanding", "-fno-pie", *(f"-idirafter{d}" for d in sdt_dirs),
                          "-c", "-o", str(obj), str(HERE / "usdt" / "usdt32.c")], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"gcc -m32 cannot compile an i386 object here: {res.stderr.strip()[-300:]}")
    subprocess.run(["ld", "-m", "elf_i386", "-e", "_start", "-o", str(exe), str(obj)], check=True)
    assert exe.read_bytes()[4] == 1  # ELFCLASS32
    found = probes(exe)
    assert [(p.provider, p.name, len(p.sites)) for p in found] == [("p32", "hello", 2), ("p32", "plain", 1)]
    assert _readelf_notes(exe) == sorted((p.provider, p.name, s.address, s.semaphore, s.arg_spec)
                                         for p in found for s in p.sites)
    sections = _section_headers(exe)
    text_addr, text_off = sections[".text"]
    probes_addr, probes_off = sections[".probes"]
    for p in found:
        assert p.semaphore and all(s.semaphore == p.semaphore for s in p.sites)
        for s in p.sites:
            assert s.offset == s.address - text_addr + text_off
            assert s.semaphore_offset == s.semaphore - probes_addr + probes_off
    hello = found[0].sites
    assert all(s.arg_spec.count("@") == 2 for s in hello)  # which registers is gcc's choice
    assert all(s.args is None and "i386" in (s.args_error or "") for s in hello)
    res = subprocess.run([sys.executable, "-m", "bpflink", "usdt", "list", str(exe)], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0 and "p32:hello (2 sites) semaphore" in res.stdout, res.stderr


@pytest.mark.hostonly
def test_prelink_adjustment_follows_stapsdt_base(bins: Bins, tmp_path: Path) -> None:
    """prelink moves sections without rewriting the notes: a site's address moves by as much as .stapsdt.base's
    sh_addr moved from the base the note recorded (libbpf's adjustment). Simulated by moving that section's
    sh_addr in a copy of the PIE."""
    moved = tmp_path / "prelinked"
    data = bytearray(bins.exe.read_bytes())
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    names_off, = struct.unpack_from("<Q", data, e_shoff + e_shstrndx * e_shentsize + 24)

    def name(i: int) -> bytes:
        start = names_off + struct.unpack_from("<I", data, e_shoff + i * e_shentsize)[0]
        return bytes(data[start:data.index(b"\0", start)])

    base = next(i for i in range(e_shnum) if name(i) == b".stapsdt.base")
    at = e_shoff + base * e_shentsize + 16  # sh_addr
    struct.pack_into("<Q", data, at, struct.unpack_from("<Q", data, at)[0] - 0x10)  # stays inside .text
    moved.write_bytes(data)
    before = [(s.address, s.offset) for p in probes(bins.exe) for s in p.sites]
    after = [(s.address, s.offset) for p in probes(moved) for s in p.sites]
    assert all(o is not None for _, o in before)
    assert after == [(a - 0x10, o - 0x10) for a, o in before]  # type: ignore[operator]


@pytest.mark.hostonly
def test_cli_usdt_list(bins: Bins) -> None:
    cli = [sys.executable, "-m", "bpflink", "usdt", "list"]
    res = subprocess.run([*cli, str(bins.exe)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "bpflinkt:site (3 sites) semaphore" in res.stdout and "s32 -3" in res.stdout
    with subprocess.Popen([str(bins.exe_lib), "1", "wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            res = subprocess.run([*cli, "--pid", str(proc.pid), "--json"], capture_output=True, text=True,
                                 timeout=60)
            listed = json.loads(res.stdout)
            assert {(p["path"], p["name"]) for p in listed} >= {(f"/proc/{proc.pid}/root{bins.lib}", "site")}
        finally:
            proc.kill()
    res = subprocess.run([*cli, "/etc/hostname"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "/etc/hostname: not an ELF file" in res.stderr
    res = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "give a BINARY, a --pid PID, or both" in res.stderr
    res = subprocess.run([*cli, "--pid", str((1 << 22) + 7)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and "ESRCH" in res.stderr and "process 4194311 is gone" in res.stderr


X86 = [
    ("8@%rdi", "reg", "rdi", 0, 8, False),
    ("-4@%eax", "reg", "rax", 0, 4, True),
    ("-1@%al", "reg", "rax", 0, 1, True),
    ("2@%r9w", "reg", "r9", 0, 2, False),
    ("-4@-20(%rbp)", "deref", "rbp", -20, 4, True),
    ("8@(%rsp)", "deref", "rsp", 0, 8, False),
    ("4@$71", "const", None, 71, 4, False),
    ("-4@$-9", "const", None, -9, 4, True),
    ("8@16(%rip)", "deref", "rip", 16, 8, False),
]


@pytest.mark.hostonly
@pytest.mark.parametrize(("spec", "kind", "reg", "offset", "size", "is_signed"), X86)
def test_decode_x86_64(spec: str, kind: str, reg: str | None, offset: int, size: int, is_signed: bool) -> None:
    (arg,) = decode_args(spec, "x86_64")
    assert (arg.kind, arg.reg, arg.offset, arg.size, arg.signed) == (kind, reg, offset, size, is_signed)


@pytest.mark.hostonly
def test_decode_x86_64_sib_and_several() -> None:
    args = decode_args("8@%rdi -4@-20(%rbp) 1@-96(%rbp,%rax,8) 2@(%rbx,%rcx)", "x86_64")
    assert [a.kind for a in args] == ["reg", "deref", "sib", "sib"]
    assert (args[2].reg, args[2].index_reg, args[2].scale, args[2].offset) == ("rbp", "rax", 8, -96)
    assert (args[3].index_reg, args[3].scale, args[3].offset) == ("rcx", 1, 0)


@pytest.mark.hostonly
def test_decode_arm64() -> None:
    args = decode_args("8@x0 -4@[sp, 16] -8@[x29] 4@5 -4@w3 8@[x1, -8]", "aarch64")
    assert [(a.kind, a.reg, a.offset, a.size, a.signed) for a in args] == [
        ("reg", "x0", 0, 8, False), ("deref", "sp", 16, 4, True), ("deref", "x29", 0, 8, True),
        ("const", None, 5, 4, False), ("reg", "x3", 0, 4, True), ("deref", "x1", -8, 8, False)]


@pytest.mark.hostonly
@pytest.mark.parametrize(("spec", "machine"), [("3@%rax", "x86_64"), ("8@%xmm0", "x86_64"),
                                               ("8@sym(%rip)", "x86_64"), ("1@(%rax,%rbx,3)", "x86_64"),
                                               ("8@x31", "aarch64"), ("8@%rax", "aarch64"), ("8@", "x86_64"),
                                               ("8@x0", "riscv64")])
def test_decode_refuses_what_the_bpf_side_cannot_read(spec: str, machine: str) -> None:
    with pytest.raises(ValueError):
        decode_args(spec, machine)


@pytest.mark.hostonly
def test_spec_layout_matches_the_bpf_headers_btf(obj: Path) -> None:
    """Our encoding's offsets against the BTF clang wrote for <bpf/usdt.bpf.h>'s structs."""
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    text = subprocess.run([bpftool, "btf", "dump", "file", str(obj)], check=True, capture_output=True,
                          text=True).stdout
    assert f"STRUCT '__bpf_usdt_spec' size={SPEC_SIZE} vlen=3" in text
    members = text.split("STRUCT '__bpf_usdt_arg_spec' size=24 vlen=8", 1)[1].split("\n[", 1)[0]
    for expected in ("'val_off' type_id=\\d+ bits_offset=0", "'arg_type' type_id=\\d+ bits_offset=64 bitfield_size=8",
                     "'idx_reg_off' type_id=\\d+ bits_offset=80 bitfield_size=12",
                     "'scale_bitshift' type_id=\\d+ bits_offset=92 bitfield_size=4",
                     "'reg_off' type_id=\\d+ bits_offset=112", "'arg_signed' type_id=\\d+ bits_offset=128",
                     "'arg_bitshift' type_id=\\d+ bits_offset=136"):
        assert re.search(expected, members), expected
    raw = encode_spec(decode_args("-4@-20(%rbp) 1@-96(%rbp,%rax,8)", "x86_64"), cookie=0x1122, machine="x86_64")
    val_off, arg_type, idx, _, reg_off, sgn, shift = struct.unpack_from("<QBxHBxhBb", raw, 0)
    assert (val_off, arg_type, reg_off, sgn, shift) == ((1 << 64) - 20, 2, 32, 1, 32)
    val_off, arg_type, idx, _, reg_off, sgn, shift = struct.unpack_from("<QBxHBxhBb", raw, 24)
    assert (val_off, arg_type, idx & 0xFFF, idx >> 12, reg_off, sgn, shift) == ((1 << 64) - 96, 3, 80, 3, 32, 0, 56)
    assert struct.unpack_from("<Qh", raw, 288) == (0x1122, 2)


@pytest.mark.hostonly
def test_x86_64_register_offsets_match_struct_pt_regs(tmp_path: Path) -> None:
    from bpflink.usdt import _X86_64_REGS

    if os.uname().machine != "x86_64":
        pytest.skip("struct pt_regs of x86-64 is only in this machine's headers on x86-64")
    src = tmp_path / "regs.c"
    names = {"rip": "rip", "rsp": "rsp", **{r: r for r in _X86_64_REGS}}
    src.write_text("#include <stdio.h>\n#include <stddef.h>\n#include <asm/ptrace.h>\nint main(void) {\n" + "".join(
        f'printf("{r} %zu\\n", offsetof(struct pt_regs, {f}));\n' for r, f in names.items()) + "return 0; }\n")
    subprocess.run(["gcc", "-o", str(tmp_path / "regs"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "regs")], check=True, capture_output=True, text=True).stdout
    assert {w[0]: int(w[1]) for w in (line.split() for line in out.splitlines())} == _X86_64_REGS


MALFORMED = textwrap.dedent("""
    import os, random, struct, sys
    from bpflink.usdt import probes
    src, out = sys.argv[1], sys.argv[2]
    data = bytearray(open(src, "rb").read())
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    cases = {
        "empty": b"", "short": data[:20], "notelf": b"hello world" * 10, "truncated": data[: len(data) // 2],
        "shoff_past_end": data[:0x28] + struct.pack("<Q", len(data) * 4) + data[0x30:],
        "shnum_huge": data[:0x3c] + struct.pack("<H", 0xfff0) + data[0x3e:],
        "shstrndx_bad": data[:0x3e] + struct.pack("<H", 0xfff0) + data[0x40:],
        "phoff_past_end": data[:0x20] + struct.pack("<Q", 1 << 40) + data[0x28:],
        "class_bad": data[:4] + b"\\x07" + data[5:],
    }
    note = data.find(b"stapsdt\\0")
    if note > 0:  # the note header is 12 bytes before its name
        cases["namesz_huge"] = data[:note - 12] + struct.pack("<I", 0x7fffffff) + data[note - 8:]
        cases["descsz_huge"] = data[:note - 8] + struct.pack("<I", 0xfffffff0) + data[note - 4:]
        cases["descsz_short"] = data[:note - 8] + struct.pack("<I", 4) + data[note - 4:]
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3c)
    names_off = struct.unpack_from("<Q", data, e_shoff + shstrndx * 64 + 24)[0]
    def sh_name(i):
        start = names_off + struct.unpack_from("<I", data, e_shoff + i * 64)[0]
        return bytes(data[start:data.index(b"\\0", start)])
    note_sh = next(i for i in range(shnum) if sh_name(i) == b".note.stapsdt")
    dup = bytearray(data)
    for i in range(1, shnum):  # every section a copy of .note.stapsdt: parsed once, as libbpf reads the first
        if i != shstrndx:
            dup[e_shoff + i * 64:e_shoff + i * 64 + 64] = data[e_shoff + note_sh * 64:e_shoff + note_sh * 64 + 64]
    cases["dup_note_sections"] = bytes(dup)
    expect_parsed = {"dup_note_sections": len(probes(src))}
    rng = random.Random(17)
    for i in range(300):  # random byte flips in the headers and the note section
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            pos = rng.choice([rng.randrange(0, 64), rng.randrange(shoff, len(data)),
                              rng.randrange(max(note - 16, 0), note + 64) if note > 0 else 0])
            if pos < len(mutated):
                mutated[pos] = rng.randrange(256)
        cases[f"flip{i}"] = bytes(mutated)
    outcome = {"value_error": 0, "parsed": 0}
    for name, blob in cases.items():
        path = os.path.join(out, name)
        with open(path, "wb") as f:
            f.write(blob)
        try:
            found = probes(path)
            assert name not in expect_parsed or len(found) == expect_parsed[name], (name, found)
            outcome["parsed"] += 1
        except ValueError as exc:
            assert path in str(exc), (name, exc)
            outcome["value_error"] += 1
        os.unlink(path)
    print(outcome["value_error"], outcome["parsed"])
""")


@pytest.mark.hostonly
def test_malformed_elf_gives_value_error_naming_the_file(bins: Bins, tmp_path: Path) -> None:
    """Crafted and randomly corrupted copies: each is parsed or a ValueError naming the file; in a child with a
    timeout and a memory cap, so a crash, hang or blow-up fails the test instead of killing the run."""
    res = subprocess.run([sys.executable, "-c", MALFORMED, str(bins.exe), str(tmp_path)], capture_output=True,
                         text=True, timeout=120,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)))
    assert res.returncode == 0, res.stderr[-3000:]
    errors, parsed = map(int, res.stdout.split())
    assert errors >= 12 and errors + parsed == 313  # every crafted case refused; every flip answered


NOTE_PROPERTY = textwrap.dedent("""
    import os, struct, sys
    from hypothesis import HealthCheck, given, settings, strategies as st
    from bpflink.usdt import probes
    src, out = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    e_shoff, = struct.unpack_from("<Q", data, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", data, 0x3c)
    names_off = struct.unpack_from("<Q", data, e_shoff + shstrndx * 64 + 24)[0]
    def name(i):
        start = names_off + struct.unpack_from("<I", data, e_shoff + i * 64)[0]
        return data[start:data.index(b"\\0", start)]
    sh = e_shoff + 64 * next(i for i in range(shnum) if name(i) == b".note.stapsdt")
    sec_off, sec_size = struct.unpack_from("<QQ", data, sh + 24)
    # a note's namesz/descsz: None is the true size, else a lie (small or huge)
    size = st.one_of(st.none(), st.none(), st.integers(0, 80), st.sampled_from([2**31, 2**32 - 1, 0xfffffff0]))
    text = st.one_of(st.binary(max_size=12), st.text("ab_@%1-", max_size=8).map(str.encode))
    strings = st.lists(text, max_size=4).map(lambda p: b"\\0".join(p) + b"\\0")
    addrs = st.one_of(st.binary(min_size=24, max_size=24), st.binary(max_size=24))
    noisy = st.tuples(size, size, st.sampled_from([3, 3, 1, 0, 2**32 - 1]),
                      st.sampled_from([b"stapsdt\\0", b"stapsdt", b"", b"GNU\\0"]), addrs, strings)
    word = st.text("ab_@%1-", min_size=1, max_size=8).map(str.encode)
    sound = st.tuples(st.none(), st.none(), st.just(3), st.just(b"stapsdt\\0"), st.binary(min_size=24, max_size=24),
                      st.tuples(word, word, word).map(lambda t: b"\\0".join(t) + b"\\0"))
    note = st.one_of(sound, noisy)
    counts = {"parsed": 0, "value_error": 0, "probes": 0}
    path = os.path.join(out, "note")

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(notes=st.lists(note, max_size=6),
           size=st.one_of(st.just(sec_size), st.just(sec_size), st.integers(0, sec_size + 64)),
           align=st.sampled_from([4, 8, 0, 3]))
    def prop(notes, size, align):
        body = b""
        for namesz, descsz, ntype, nm, addrs, strs in notes:
            real_name = nm.ljust((len(nm) + 3) & ~3, b"\\0")
            desc = (addrs + strs).ljust((len(addrs + strs) + 3) & ~3, b"\\0")
            body += struct.pack("<III", len(nm) if namesz is None else namesz,
                                len(addrs + strs) if descsz is None else descsz, ntype) + real_name + desc
        body = body[:sec_size].ljust(sec_size, b"\\0")
        blob = bytearray(data)
        blob[sec_off:sec_off + sec_size] = body
        struct.pack_into("<Q", blob, sh + 32, size)  # sh_size
        struct.pack_into("<Q", blob, sh + 48, align)  # sh_addralign: 8 makes libelf read 8-byte aligned notes
        with open(path, "wb") as f:
            f.write(blob)
        try:
            found = probes(path)
        except ValueError as exc:
            assert path in str(exc), exc
            counts["value_error"] += 1
            return
        for p in found:
            assert p.provider is not None and p.name and p.sites
        counts["parsed"] += 1
        counts["probes"] += len(found)

    prop()
    print(counts["value_error"], counts["parsed"], counts["probes"])
""")


@pytest.mark.hostonly
def test_note_section_property(bins: Bins, tmp_path: Path) -> None:
    """Hypothesis writes note sections (stapsdt and other notes with true and lying sizes, 4- and 8-byte note
    alignment, a shrunk or grown section size) into a copy of the PIE: each is listed or a ValueError naming the
    file. In a child with a timeout and a memory cap (libelf runs in this process's address space)."""
    res = subprocess.run([sys.executable, "-c", NOTE_PROPERTY, str(bins.exe), str(tmp_path)], capture_output=True,
                         text=True, timeout=180,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)))
    assert res.returncode == 0, res.stderr[-3000:]
    errors, parsed, listed = map(int, res.stdout.split())
    assert errors and parsed and listed  # refusals, files read, and generated probes listed: the property bites


@pytest.mark.hostonly
def test_listing_a_directory_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=str(tmp_path)):
        probes(tmp_path)
    with pytest.raises(FileNotFoundError):
        probes(tmp_path / "missing")
    assert probes("/bin/true") == [] or all(p.provider for p in probes("/bin/true"))


@pytest.mark.hostonly
def test_pid_paths_resolve_symlinks_inside_the_process_root(tmp_path: Path, bins: Bins) -> None:
    """A binary path given with pid= follows an absolute symlink inside that process's root, not ours."""
    busybox = shutil.which("busybox")
    if busybox is None or os.geteuid() != 0:
        pytest.skip("needs root and busybox-static (scripts/setup installs it) for a chroot'ed process")
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "opt").mkdir()
    probe = root / "opt" / "only-in-root"
    shutil.copy(bins.exe, probe)  # a binary with probes that exists only under the chroot
    (root / "app").symlink_to("/opt/only-in-root")  # absolute: the kernel would resolve it against our root
    with subprocess.Popen(["chroot", str(root), "/bin/busybox", "sleep", "30"]) as proc:
        try:
            for _ in range(100):  # until the child has chroot'ed (its root is no longer ours)
                if os.readlink(f"/proc/{proc.pid}/root") != "/":
                    break
                threading.Event().wait(0.02)
            assert not os.path.exists(f"/proc/{proc.pid}/root/app")  # the kernel's walk leaves the root
            found = probes("/app", pid=proc.pid)
            assert [(p.provider, p.name) for p in found] == [("bpflinkt", "site"), ("bpflinkt", "guarded")]
            assert {p.path for p in found} == {f"/proc/{proc.pid}/root/opt/only-in-root"}
        finally:
            proc.kill()
