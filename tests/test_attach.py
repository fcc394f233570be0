"""bpflink.attach on the running kernel: Object.attach/attach_all by section name, the single-call helpers, every
perf-event-based link owning its event, LinkGroup all-or-nothing and parallel close, sampling on every CPU."""

from __future__ import annotations

import errno
import gc
import os
import platform
import socket
import time
from pathlib import Path

import pytest

import bpflink
from bpflink import AttachType, Link, Object
from bpflink.attach import LegacyLink, LinkGroup, perf_sample, raw_tracepoint, tracepoint, uprobe, uprobe_multi
from bpflink.errors import NotSupportedError
from bpflink.features import FEATURES, kernel_version
from conftest import is_perf_fd, open_fds, perf_fds
from honest_skips import unsupported

_GETPPID = {"x86_64": 110, "aarch64": 173}
TP, RAW, UPROBE, URET_MULTI, ITER, SAMPLE, XDP, EGRESS = 1, 2, 3, 4, 5, 6, 7, 8
BASIC = ["on_tp", "on_raw_tp", "on_uprobe", "on_iter"]


@pytest.fixture
def sections(bpf_objects: dict[str, Path]) -> Path:
    return bpf_objects["attach_sections"]


def _open(path: Path, programs: list[str] | None = None) -> Object:
    obj = Object.open(path, programs=programs)
    cfg = obj.map("cfg")
    cfg.update(0, os.getpid())
    cfg.update(1, _GETPPID.get(platform.machine(), 0))
    cfg.close()
    return obj


def _hits(obj: Object) -> dict[int, int]:
    m = obj.map("hits")
    try:
        return {k: m.lookup_int(k) for k in range(32)}
    finally:
        m.close()


def test_attach_all_fires_each_and_close_stops_them(sections: Path) -> None:
    """The proof: tracepoint, raw_tp, uprobe (library name), uretprobe.multi (glob) and iter from one object."""
    gc.collect()  # what earlier tests left to the collector must not close during the fd count
    perf_before, fds_before = perf_fds(), open_fds()
    with _open(sections, [*BASIC, "on_uretprobe_multi"]) as obj:
        try:
            links = obj.attach_all()
        except (NotSupportedError, OSError) as exc:
            unsupported("uprobe_multi", exc)
        assert sorted(links) == sorted([*BASIC, "on_uretprobe_multi"])
        assert all(isinstance(ln, Link) for ln in links.values())
        multi = links["on_uretprobe_multi"]
        # before 6.6: single uretprobes, each a perf event; the handle's own fd is a dup of one of them where the
        # kernel has no perf_event links either (5.10), a perf_event link where it has (6.1)
        extra = sum(is_perf_fd(fd) for fd in (multi.fd, *(pe.fd for pe in multi.perf_events))) if multi.legacy else 0
        assert perf_fds() == perf_before + 2 + extra  # tracepoint and uprobe run on perf events the links own
        assert links["on_tp"].perf_event is not None and links["on_uprobe"].perf_event is not None
        for _ in range(5):
            os.getppid()
        links["on_iter"].read_iter()
        h = _hits(obj)
        assert h[TP] == 5 and h[UPROBE] == 5 and h[URET_MULTI] == 5
        if platform.machine() in _GETPPID:
            assert h[RAW] == 5
        assert h[ITER] > 1  # one run per task, plus the end-of-walk call
        for link in links.values():
            link.close()
        assert perf_fds() == perf_before and links["on_tp"].perf_event.closed
        for _ in range(5):
            os.getppid()
        assert {k: v for k, v in _hits(obj).items() if k != ITER} == {k: v for k, v in h.items() if k != ITER}
    assert open_fds() == fds_before


def test_attach_one_by_name_and_the_link_outlives_the_object(sections: Path) -> None:
    obj = _open(sections, BASIC)
    hits = obj.map("hits")
    link = obj.attach("on_tp")
    obj.close()
    try:
        os.getppid()
        os.getppid()
        assert hits.lookup_int(TP) == 2
    finally:
        link.close()
        hits.close()


def test_target_needing_sections_say_what_to_pass(sections: Path, cgroup: Path) -> None:
    with _open(sections) as obj:
        with pytest.raises(ValueError, match=r"on_xdp.*SEC\(\"xdp\"\).*target=.*network device"):
            obj.attach("on_xdp")
        with pytest.raises(ValueError, match=r"on_egress.*cgroup v2 directory"):
            obj.attach("on_egress")
        with pytest.raises(ValueError, match=r"on_sample.*perf event"):
            obj.attach("on_sample")
        with pytest.raises(ValueError, match=r"on_bare_kprobe.*target='FUNC'"):
            obj.attach("on_bare_kprobe")
        with pytest.raises(ValueError, match=r"on_bare_uprobe.*BINARY:FUNCTION"):
            obj.attach("on_bare_uprobe")
        with pytest.raises(ValueError, match=r"need a target: .*on_xdp.*targets=\{'on_xdp'"):
            obj.attach_all()
        with pytest.raises(TypeError, match="do not apply"):
            obj.attach("on_tp", pid=1)
        with obj.attach("on_egress", str(cgroup)) as egress:
            assert egress.info().attach_type == AttachType.CGROUP_INET_EGRESS
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.close()
        # a bare section takes its argument from target=
        with obj.attach("on_bare_tp", "syscalls:sys_enter_getppid"), \
                obj.attach("on_bare_uprobe", "libc.so.6:getppid"):
            os.getppid()
            h = _hits(obj)
            assert h[10] == 1 and h[11] == 1


def test_xdp_with_target_fires(sections: Path) -> None:
    with _open(sections) as obj:
        try:
            link = obj.attach("on_xdp", "lo")
        except OSError as exc:
            unsupported("xdp", exc)
        with link:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"x", ("127.0.0.1", 9))
            s.close()
            assert _hits(obj)[XDP] >= 1


def test_attach_all_with_targets_and_skip(sections: Path, cgroup: Path) -> None:
    with _open(sections, [*BASIC, "on_xdp", "on_egress", "on_sample"]) as obj:
        links = obj.attach_all({"on_egress": cgroup, "on_sample": {"event": "cpu-clock", "freq": 1000}},
                               skip_untargeted=True)
        try:
            assert "on_xdp" not in links and {"on_egress", "on_sample", "on_tp"} <= set(links)
            assert len(links["on_sample"].perf_events) == len(bpflink.attach.online_cpus())
            t = time.monotonic() + 0.2
            while time.monotonic() < t:
                pass
            assert _hits(obj)[SAMPLE] > 0
        finally:
            LinkGroup(links).close()


def test_all_or_nothing_names_the_failing_one(sections: Path) -> None:
    gc.collect()
    perf_before, fds_before = perf_fds(), open_fds()
    want = r"attaching 'bad'.*2 link\(s\) attached before it were closed.*no tracepoint"
    with _open(sections, BASIC) as obj, obj.program("on_tp") as prog, pytest.raises(FileNotFoundError, match=want):
        LinkGroup.attach({"a": lambda: tracepoint(prog, "syscalls:sys_enter_getppid"),
                              "b": lambda: tracepoint(prog, "syscalls:sys_enter_getpid"),
                              "bad": lambda: tracepoint(prog, "syscalls:bpflink_no_such_tp")})
    assert perf_fds() == perf_before and open_fds() == fds_before


def test_group_close_is_parallel_and_complete(sections: Path) -> None:
    names = sorted(p.name for p in bpflink.perf.tracefs().joinpath("events/syscalls").glob("sys_enter_*"))
    names = [*[n for n in names if n != "sys_enter_getppid"][:19], "sys_enter_getppid"]
    with _open(sections, ["on_bare_tp"]) as obj, obj.program("on_bare_tp") as prog:
        group = LinkGroup.attach({n: (lambda n=n: tracepoint(prog, f"syscalls:{n}")) for n in names})
        assert len(group) == 20 and group["sys_enter_getppid"].perf_event.name == "syscalls:sys_enter_getppid"
        before = _hits(obj)[10]
        os.getppid()
        assert _hits(obj)[10] > before
        links = list(group)
        group.close()
        assert all(ln.closed and ln.perf_event.closed for ln in links)
        group.close()  # idempotent
        before = _hits(obj)[10]
        os.getppid()
        assert _hits(obj)[10] == before


def test_helpers_by_name_raw_tp_cookie_and_uprobe_by_library(sections: Path) -> None:
    with _open(sections, BASIC) as obj, obj.program("on_raw_tp") as raw, obj.program("on_uprobe") as up:
        with raw_tracepoint(raw, "sys_enter"), uprobe(up, "c", "getppid"), \
                uprobe(up, None, "getppid@libc.so.6", pid=os.getpid()):
            os.getppid()
            h = _hits(obj)
            assert h[UPROBE] == 2
            if platform.machine() in _GETPPID:
                assert h[RAW] == 1
        with pytest.raises(FileNotFoundError, match="no library 'bpflink_nolib'"):
            uprobe(up, "bpflink_nolib", "f")


def test_attach_program_from_its_section_name(sections: Path) -> None:
    from bpflink.attach import attach_program

    with _open(sections, BASIC) as obj, obj.program("on_tp") as prog:
        assert prog.section_name == "tracepoint/syscalls/sys_enter_getppid"
        with attach_program(prog, cookie=3) as link:
            os.getppid()
            assert _hits(obj)[TP] == 1
            info = link.info()
            if info.reported:  # the kernel names the event and its cookie from 6.6
                assert (info.name, info.cookie) == ("sys_enter_getppid", 3)
        with pytest.raises(ValueError, match="carries no section name"):
            attach_program(prog.fd)
        with attach_program(prog.fd, section="tp/syscalls/sys_enter_getppid"):
            os.getppid()
            assert _hits(obj)[TP] == 2


@pytest.mark.hostonly
def test_sections_that_cannot_attach_say_why() -> None:
    from bpflink.attach import attach_program, section_types
    from bpflink.enums import ProgType

    assert section_types("uprobe.multi/libc.so.6:mall*")[0] == ProgType.KPROBE
    r, w = os.pipe()
    try:
        with pytest.raises(ValueError, match=r"struct_ops callback.*through its struct_ops map"):
            attach_program(r, section="struct_ops/ssthresh")
        with pytest.raises(ValueError, match=r"no link attach type.*tcx/ingress"):
            attach_program(r, section="tc")
        with pytest.raises(ValueError, match="libbpf knows no section"):
            attach_program(r, section="bpflink_nonsense/x")
        with pytest.raises(ValueError, match=r"opts=bpflink.opts.Netfilter"):
            attach_program(r, section="netfilter")
        with pytest.raises(ValueError, match=r"on_x|fd \d+.*BINARY:FUNCTION"):
            attach_program(r, section="uprobe/nocolon")
    finally:
        os.close(r)
        os.close(w)


def test_tp_btf_section(sections: Path) -> None:
    if platform.machine() not in _GETPPID:
        pytest.skip("the getppid syscall number of this architecture is not in the test's table")
    with _open(sections, ["on_tp_btf"]) as obj:
        try:
            link = obj.attach("on_tp_btf")
        except OSError as exc:
            unsupported("tracing", exc)
        with link:
            os.getppid()
            os.getppid()
            assert _hits(obj)[17] == 2
        os.getppid()
        assert _hits(obj)[17] == 2


def test_sampling_per_task(sections: Path) -> None:
    with _open(sections, ["on_sample"]) as obj, obj.program("on_sample") as prog:
        with perf_sample(prog, "task-clock", period=100_000, pid=os.getpid()) as link:
            assert len(link.perf_events) == 1
            t = time.monotonic() + 0.2
            while time.monotonic() < t:
                pass
            assert _hits(obj)[SAMPLE] > 0
        assert link.perf_event.closed
        with pytest.raises(ValueError, match="exactly one of freq"):
            perf_sample(prog, "cpu-clock")


# --- fallbacks without a kernel link (bpflink.attach.legacy): forced with mode="legacy" on any kernel ---------------
def test_legacy_tracepoint_and_uprobe_fire_through_the_perf_event_ioctl(sections: Path, bpf_no_leaks: object) -> None:
    perf_before = perf_fds()
    with _open(sections, BASIC) as obj, obj.program("on_tp") as tp, obj.program("on_uprobe") as up:
        with tracepoint(tp, "syscalls:sys_enter_getppid", mode="legacy") as lt, \
                uprobe(up, "libc.so.6", "getppid", mode="legacy") as lu:
            for link in (lt, lu):
                assert link.legacy and link.kind == "perf_event_ioctl" and isinstance(link, LegacyLink)
                info = link.info()
                assert info.kind == "perf_event_ioctl" and info.legacy and info.min_kernel_for_link == "5.15"
            assert lt.info().events == ("tracepoint:syscalls:sys_enter_getppid",)
            assert perf_fds() == perf_before + 2  # the handle's fd is the perf event itself
            for _ in range(5):
                os.getppid()
            h = _hits(obj)
            assert h[TP] == 5 and h[UPROBE] == 5
            for call in (lambda: lt.pin("/sys/fs/bpf/bpflink_legacy"), lambda: lt.id, lambda: lt.update(tp),
                         lt.detach):
                with pytest.raises(NotSupportedError, match=r"no kernel link object.*Linux >= 5\.15"):
                    call()
        assert lt.closed and lt.perf_event.closed and perf_fds() == perf_before
        for _ in range(5):
            os.getppid()
        assert _hits(obj)[TP] == 5 and _hits(obj)[UPROBE] == 5  # closing detached both


def _tracefs_lines(kind: str) -> list[str]:
    from bpflink.perf import tracefs

    return (tracefs() / f"{kind}_events").read_text().splitlines()


def test_tracefs_uprobe_fires_through_the_ioctl_and_close_removes_the_event(sections: Path,
                                                                           bpf_no_leaks: object) -> None:
    """mode="tracefs" (what auto uses where the uprobe PMU cannot make the probe): a uprobe_events entry opened as
    a tracepoint, PERF_EVENT_IOC_SET_BPF; exact counts, and closing removes the event from tracefs."""
    from bpflink.attach.tracefs import GROUP

    perf_before = perf_fds()
    before = [ln for ln in _tracefs_lines("uprobe") if f"{GROUP}/" in ln]
    with _open(sections, BASIC) as obj, obj.program("on_uprobe") as up:
        with pytest.raises(NotSupportedError, match=r"BPF cookies need a perf_event link"):
            uprobe(up, "libc.so.6", "getppid", cookie=5, mode="tracefs")
        assert [ln for ln in _tracefs_lines("uprobe") if f"{GROUP}/" in ln] == before  # refused before any event
        with uprobe(up, "libc.so.6", "getppid", mode="tracefs") as link:
            assert link.kind == "tracefs_ioctl" and link.legacy and isinstance(link, LegacyLink)
            assert link.info().min_kernel_for_link == "5.15"
            (event,) = link.info().events
            assert event.startswith(f"uprobe_events:{GROUP}:")
            name = event.rsplit(":", 1)[1]
            mine = [ln for ln in _tracefs_lines("uprobe") if f"{GROUP}/{name} " in ln]
            assert len(mine) == 1 and "libc.so.6:0x" in mine[0], mine
            assert perf_fds() == perf_before + 1 and link.perf_event.kind == "uprobe_events"
            for _ in range(7):
                os.getppid()
            assert _hits(obj)[UPROBE] == 7
            with pytest.raises(NotSupportedError, match="no kernel link object"):
                link.pin("/sys/fs/bpf/bpflink_tracefs")
        assert not [ln for ln in _tracefs_lines("uprobe") if f"{GROUP}/{name} " in ln]  # removed on close
        assert link.perf_event.closed and perf_fds() == perf_before
        os.getppid()
        assert _hits(obj)[UPROBE] == 7
        # uprobe_multi as single probes, each through tracefs
        with uprobe_multi(up, "libc.so.6", ["getppid", "getppid"], mode="tracefs") as multi:
            assert multi.kind == "single_probes"
            assert all(ev.kind == "uprobe_events" and is_perf_fd(ev.fd) for ev in multi.perf_events)
            assert len(multi.perf_events) == 2
            os.getppid()
            assert _hits(obj)[UPROBE] == 9
        assert [ln for ln in _tracefs_lines("uprobe") if f"{GROUP}/" in ln] == before


def test_legacy_refuses_cookies_and_auto_picks_the_link_where_it_exists(sections: Path, bpf_no_leaks: object) -> None:
    perf_before = perf_fds()
    with _open(sections, BASIC) as obj, obj.program("on_tp") as tp:
        with pytest.raises(NotSupportedError, match=r"BPF cookies need a perf_event link.*Linux >= 5\.15"):
            tracepoint(tp, "syscalls:sys_enter_getppid", cookie=7, mode="legacy")
        assert perf_fds() == perf_before  # the perf event opened for it is closed again
        with pytest.raises(ValueError, match="mode must be one of"):
            tracepoint(tp, "syscalls:sys_enter_getppid", mode="ioctl")
        with obj.attach("on_tp", mode="legacy") as link:
            assert link.kind == "perf_event_ioctl"
            os.getppid()
            assert _hits(obj)[TP] == 1
        try:
            auto = tracepoint(tp, "syscalls:sys_enter_getppid")
        except NotSupportedError as exc:
            unsupported("perf_event", exc)
        with auto:
            # auto: the perf_event link where the kernel has it, else (before 5.15) the ioctl
            want = "perf_event_link" if kernel_version() >= FEATURES["perf_event"].min_kernel else "perf_event_ioctl"
            assert auto.kind == want and auto.legacy == (want == "perf_event_ioctl")
            os.getppid()
            assert _hits(obj)[TP] == 2


def test_uprobe_multi_as_single_probes(sections: Path, bpf_no_leaks: object) -> None:
    # a plain uprobe program: one loaded for uprobe_multi (its expected attach type) is refused on perf events
    # by kernels that know uprobe_multi; older ones (the fallback's case) do not check it
    with _open(sections, BASIC) as obj, obj.program("on_uprobe") as up:
        with uprobe_multi(up, "libc.so.6", ["getppid", "getppid"], mode="legacy") as link:
            assert link.kind == "single_probes" and link.legacy
            assert len(link.info().events) == 2 and all(e.startswith("uprobe:") for e in link.info().events)
            with pytest.raises(NotSupportedError, match="no kernel link object"):
                link.pin("/sys/fs/bpf/bpflink_legacy_multi")
            for _ in range(3):
                os.getppid()
            assert _hits(obj)[UPROBE] == 6  # two probes on the one function
        os.getppid()
        assert _hits(obj)[UPROBE] == 6


def test_legacy_sampling_on_every_cpu(sections: Path, bpf_no_leaks: object) -> None:
    perf_before = perf_fds()
    with _open(sections, ["on_sample"]) as obj, obj.program("on_sample") as prog:
        with perf_sample(prog, "cpu-clock", freq=1000, mode="legacy") as link:
            assert link.kind == "perf_event_ioctl" and len(link.perf_events) == len(bpflink.attach.online_cpus())
            t = time.monotonic() + 0.2
            while time.monotonic() < t:
                pass
            assert _hits(obj)[SAMPLE] > 0
        assert all(ev.closed for ev in link.perf_events) and perf_fds() == perf_before
        with pytest.raises(NotSupportedError, match="cookie"):
            perf_sample(prog, "cpu-clock", freq=1000, cookie=1, mode="legacy")


def test_cgroup_prog_attach_fallback(sections: Path, cgroup: Path, bpf_no_leaks: object) -> None:
    """BPF_PROG_ATTACH (what auto uses before cgroup links, 5.7), forced with mode="legacy": exact counts."""
    from conftest import run_in_cgroup

    send = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" \
           "for _ in range(3): s.sendto(b'x', ('127.0.0.1', 9))\n"
    with _open(sections, ["on_egress"]) as obj:
        with obj.map("cfg") as cfg:
            cfg.update(0, 0)  # the egress program counts every packet of the cgroup
        with obj.attach("on_egress", cgroup, mode="legacy") as link:
            assert link.kind == "prog_attach" and link.legacy and link.info().min_kernel_for_link == "5.7"
            with pytest.raises(NotSupportedError, match=r"Linux >= 5\.7"):
                link.pin("/sys/fs/bpf/bpflink_prog_attach")
            assert run_in_cgroup(cgroup, send).returncode == 0
            assert _hits(obj)[EGRESS] == 3
        assert run_in_cgroup(cgroup, send).returncode == 0
        assert _hits(obj)[EGRESS] == 3  # close detached it
        link.close()  # idempotent


def test_xdp_netlink_fallback_drops_then_close_restores(bpf_objects: dict[str, Path], bpf_no_leaks: object) -> None:
    """XDP through rtnetlink (what auto uses before XDP links, 5.9), forced with mode="legacy": the datagrams are
    dropped and counted exactly, a second program is refused, and close detaches."""
    from netns import NetPair

    with NetPair("xdpnl") as ns, Object.open(bpf_objects["net_xdp"]) as obj, obj.map("counters") as counters:
        assert ns.udp_deliveries(2) == 2
        with ns.entered():
            link = obj.attach("xdp_drop", ns.dev_b, mode="legacy")
        with link:
            assert link.kind == "netlink" and link.legacy and link.info().min_kernel_for_link == "5.9"
            assert ns.udp_deliveries(3) == 0 and counters.lookup_int(0) == 3
            with ns.entered(), pytest.raises(OSError) as busy:
                obj.attach("xdp_pass", ns.dev_b, mode="legacy")
            assert busy.value.errno in (errno.EBUSY, errno.EEXIST) and "netlink attach" in str(busy.value)
            with pytest.raises(NotSupportedError, match=r"Linux >= 5\.9"):
                link.pin("/sys/fs/bpf/bpflink_xdp_netlink")
        assert ns.udp_deliveries(3) == 3 and counters.lookup_int(0) == 3  # detached
        link.close()  # idempotent
