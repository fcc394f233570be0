"""Object: open -> configure (globals typed from BTF, map settings, autoload) -> load; the data a program produces
read back typed; load failures that name their cause; an uncopyable handle whose close is thread-safe."""

from __future__ import annotations

import copy
import errno
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bpflink import AttachType, Map, Object, VerifierError, link_create, perf, possible_cpus
from bpflink.errors import NotSupportedError

GETPPID = 110  # x86_64 __NR_getppid (the tests compile for -D__TARGET_ARCH_x86)


@pytest.fixture
def counts(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["data_counts"]


def run_child(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout)


# --- globals before load (libbpf's open needs no kernel) -----------------------------------------------------------


@pytest.mark.hostonly
def test_globals_are_typed_from_btf_before_load(counts: Path) -> None:
    with Object.open(counts, load=False) as obj:
        g = obj.globals
        assert not obj.loaded
        assert {"target_tgid", "nr_filter", "tag", "hits", "last_nr", "scale", "last_key", "ports",
                "defaults"} <= set(g)
        assert (g.ctype("target_tgid"), g.section("target_tgid")) == ("const volatile __u32", ".rodata")
        assert (g.section("hits"), g.section("scale")) == (".bss", ".data")
        assert (g["tag"], g["nr_filter"], g["scale"], g["ports"]) == (b"none", -1, 3, [1, 2, 3, 4])
        assert g["defaults"] == {"count": 1, "last_nr": 0, "flags": [0, 0, 0, 0]}
        g["target_tgid"] = 2**32 - 1
        g["nr_filter"] = -2**15
        g["tag"] = "abcdefgh"  # exactly 8: no NUL needed
        g["ports"] = (80, 443, 8080, 65535)
        g["defaults"] = {"count": 9, "flags": [1, 2, 3, 4]}
        g["last_key"] = bytes(range(20))
        assert (g["target_tgid"], g["nr_filter"], g["tag"], g["ports"]) == (2**32 - 1, -2**15, b"abcdefgh",
                                                                               [80, 443, 8080, 65535])
        assert g["defaults"] == {"count": 9, "last_nr": 0, "flags": [1, 2, 3, 4]}
        assert g["last_key"]["pid"] == 0x03020100
        for name, value, pattern in (
                ("target_tgid", -1, r"target_tgid \(const volatile __u32\) takes an int in 0..4294967295"),
                ("nr_filter", 2**15, r"nr_filter \(const volatile __s16\) takes an int in -32768..32767"),
                ("target_tgid", "1", r"target_tgid \(const volatile __u32\) takes an int"),
                ("tag", "123456789", r"tag \(const volatile char\[8\]\) holds at most 8 bytes"),
                ("tag", 5, r"tag \(const volatile char\[8\]\) takes str or bytes"),
                ("ports", [1, 2], r"ports \(__u16\[4\]\) takes 4 elements"),
                ("ports", [1, 2, 3, 70000], r"ports\[3\] \(__u16\) takes an int in 0..65535"),
                ("defaults", {"nope": 1}, r"defaults \(struct comm_val\) has no member"),
                ("defaults", b"\0" * 3, r"defaults \(struct comm_val\) takes 16 bytes"),
                ("scale", True, r"scale \(__u64\) takes an int")):
            with pytest.raises(TypeError, match=pattern):
                g[name] = value
        with pytest.raises(KeyError, match=r"no global variable 'nope'.*target_tgid"):
            g["nope"] = 1
        with pytest.raises(KeyError):
            g["nope"]
        with pytest.raises(ValueError, match="not created yet"):
            obj.map("by_comm")


@pytest.mark.hostonly
def test_libbpf_errors_are_translated(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.o"
    bogus.write_bytes(b"\x7fELF" + b"\0" * 60)
    with pytest.raises(OSError, match=r"BPF object format invalid \[LIBBPF_ERRNO 4001\]") as exc:
        Object.open(bogus)
    assert "Unknown error" not in str(exc.value)
    with pytest.raises(ValueError, match="NUL"):
        Object.open(b"a\0b")


# --- on the kernel ----------------------------------------------------------------------------------------------------


def test_program_output_read_typed_rodata_bss_percpu_and_struct_keys(counts: Path) -> None:
    events = 23
    with Object.open(counts, load=False) as obj:
        obj.globals["target_tgid"] = os.getpid()
        obj.globals["nr_filter"] = GETPPID
        obj.globals["tag"] = b"ok"
        obj.load()
        assert obj.loaded and obj.globals["target_tgid"] == os.getpid()  # .rodata reads back frozen
        with pytest.raises(ValueError, match="frozen at load"):
            obj.globals["target_tgid"] = 1
        with pytest.raises(ValueError, match="already loaded"):
            obj.configure_map("by_comm", max_entries=8)
        with obj.program("count_sys_enter") as prog, obj.map("percpu_hits") as percpu, \
                obj.map("by_comm") as by_comm, \
                perf.open_tracepoint("raw_syscalls:sys_enter", pid=os.getpid(), cpu=-1) as ev, \
                link_create(prog, ev, AttachType.PERF_EVENT):
            for _ in range(events):
                os.getppid()
            assert obj.globals["hits"] == events  # .bss, live through the mmap'ed map
            assert obj.globals["last_nr"] == GETPPID and obj.globals["seen_tag"] == ord("o") | ord("k") << 8
            assert percpu.percpu and len(percpu.lookup(0)) == possible_cpus()
            assert percpu.sum(0) == events == sum(percpu.lookup(0))
            me = {"pid": os.getpid(), "comm": Path("/proc/self/comm").read_text().strip().encode()[:15]}
            assert obj.globals["last_key"] == me  # a struct global decodes like a map key
            items = list(by_comm.items())
            assert items == [(me, {"count": 3 * events, "last_nr": GETPPID, "flags": [1, 2, 3, 4]})]
            assert by_comm.lookup(me)["count"] == 3 * events
            obj.globals["scale"] = 100  # .data written live: the program sees it on its next run
            os.getppid()
            assert by_comm.lookup(me)["count"] == 3 * events + 100
            assert by_comm.key_type.cname == "struct comm_key" and by_comm.value_type.cname == "struct comm_val"
            with Map.from_id(by_comm.id) as by_id:  # typed from the kernel's copy of the BTF, no Object needed
                assert list(by_id.items()) == list(by_comm.items())
        assert obj.globals["hits"] == events + 1


def test_verifier_error_names_the_program_and_carries_the_log(bpf_objects: dict[str, Path]) -> None:
    path = bpf_objects["data_bad"]
    with pytest.raises(VerifierError) as exc:
        Object.open(path)
    err = exc.value
    assert err.program == "reads_past_value"  # type: ignore[attr-defined]
    assert "reads_past_value" in str(err) and "invalid access to map value" in err.log
    assert err.errno == errno.EACCES
    with Object.open(path, programs=["fine_prog"]) as obj, obj.program("fine_prog") as prog:
        assert prog.name == "fine_prog"
    with Object.open(path, load=False) as obj:
        obj.configure_program("reads_past_value", autoload=False)
        obj.load()
        with pytest.raises(ValueError, match="not loaded"):
            obj.program("reads_past_value")


def test_map_settings_before_load_and_pinned_map_reuse(counts: Path) -> None:
    pin = Path("/sys/fs/bpf") / f"bpflink-obj-{os.getpid()}"
    try:
        with Object.open(counts, load=False) as first:
            first.configure_map("by_comm", max_entries=1000, pin_path=pin)
            first.load()
            with first.map("by_comm") as m:
                assert m.max_entries == 1000 and pin.exists()
                m.update({"pid": 1, "comm": "x"}, {"count": 5})
        with Object.open(counts, load=False) as second:
            second.configure_map("by_comm", max_entries=1000, pin_path=pin)  # reuses the pinned map
            second.load()
            with second.map("by_comm") as m:
                assert m.lookup({"pid": 1, "comm": "x"})["count"] == 5
        with Object.open(counts, load=False) as third, Map.from_pin(pin) as pinned:
            third.configure_map("by_comm", reuse=pinned)
            with pytest.raises(ValueError):
                third.configure_map("by_comm", max_entries=0)
            with pytest.raises(KeyError, match="no map 'nope'"):
                third.configure_map("nope", max_entries=1)
            third.load()
            with third.map("by_comm") as m:
                assert m.id == pinned.id
    finally:
        if pin.exists():
            pin.unlink()


# --- the handle: copies, close, threads (issue 13) -------------------------------------------------------------------


def test_object_is_uncopyable_and_every_method_after_close_is_a_valueerror(counts: Path) -> None:
    obj = Object.open(counts, load=False)
    for fn in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be copied"):
            fn(obj)
    obj.close()
    obj.close()
    calls = (lambda: obj.program_names, lambda: obj.map_names, obj.maps, lambda: obj.map("by_comm"),
             lambda: obj.program("count_sys_enter"), obj.load, lambda: obj.globals["hits"],
             lambda: obj.configure_map("by_comm", max_entries=2), lambda: obj.configure_program("x", autoload=False))
    for call in calls:
        with pytest.raises(ValueError, match="I/O operation on closed Object"):
            call()


def test_close_racing_other_threads_never_touches_freed_memory(counts: Path) -> None:
    res = run_child(f"""
        import threading
        from bpflink import Object
        errors = set()
        for round in range(30):
            obj = Object.open({str(counts)!r})
            start = threading.Barrier(8)
            def work(i):
                start.wait()
                for _ in range(20):
                    try:
                        if i % 4 == 0:
                            obj.close()
                        elif i % 4 == 1:
                            obj.program_names
                        elif i % 4 == 2:
                            for m in obj.maps().values():
                                m.close()
                        else:
                            obj.globals["hits"]
                    except Exception as exc:  # anything but the closed-Object ValueError fails the test
                        errors.add(f"{{type(exc).__name__}}: {{exc}}")
            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        print(sorted(errors))
    """, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() in ("[]", "['ValueError: I/O operation on closed Object']")


def test_policy_refusal_is_not_supported_with_the_reason(bpf_objects: dict[str, Path]) -> None:
    # fentry programs: refused to root where lockdown or an LSM forbids trampolines (this project's CI host)
    from bpflink.kernel import lockdown

    mode = lockdown()
    try:
        obj = Object.open(bpf_objects["trace_tracing"])
    except NotSupportedError as exc:
        assert isinstance(exc, PermissionError) and exc.errno == errno.EPERM  # `except PermissionError` still works
        assert "fentry_" in str(exc) and (f"lockdown ('{mode}')" if mode else "LSM") in exc.reason
    except OSError as exc:  # a kernel without some tracing feature of the file: not a policy refusal
        assert not mode and exc.errno != errno.EPERM, exc
    else:
        obj.close()
        assert not mode


def test_fork_while_another_thread_holds_the_object_does_not_hang_the_child(counts: Path) -> None:
    res = run_child(f"""
        import os, threading, time
        from bpflink import Object
        obj = Object.open({str(counts)!r}, load=False)
        held, release = threading.Event(), threading.Event()
        def hold():
            with obj._lock:  # a method in progress in another thread at fork()
                held.set()
                release.wait()
        t = threading.Thread(target=hold)
        t.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if "count_sys_enter" in obj.program_names else 3)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            status = -1
        release.set()
        t.join()
        print(status)
    """)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "0"


def test_maps_and_programs_outlive_the_object_typed(counts: Path) -> None:
    obj = Object.open(counts)
    by_comm, prog = obj.map("by_comm"), obj.program("count_sys_enter")
    obj.close()
    with by_comm, prog:
        key = {"pid": 7, "comm": "after-close"}
        by_comm.update(key, {"count": 2, "last_nr": -1})
        assert list(by_comm.items()) == [({"pid": 7, "comm": b"after-close"},
                                          {"count": 2, "last_nr": -1, "flags": [0, 0, 0, 0]})]
        assert prog.id > 0 and prog.maps["percpu_hits"].percpu
