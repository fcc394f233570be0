"""struct_ops links: a TCP congestion control from tests/bpf/struct_ops_cc.bpf.c registered through
``link_create(map, None, AttachType.STRUCT_OPS)``. It is usable (listed in tcp_available_congestion_control,
selectable with ``TCP_CONGESTION``) exactly while the link lives; ``Link.update_map`` swaps its map."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import AttachType, Link, LinkType, Map, Object, link_create
from bpflink.info import StructOpsLinkInfo
from bpflink.struct_ops import build_value, write_value
from honest_skips import link_or_skip, unsupported

STRUCT_OPS = AttachType.STRUCT_OPS
CC = "bpflink_cc"
AVAILABLE = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    try:
        o = Object.open(bpf_objects["struct_ops_cc"])
    except OSError as exc:  # before 6.4 the kernel refuses struct_ops maps with BPF_F_LINK
        unsupported("struct_ops", exc)
    with o:
        yield o


def ready_map(obj: Object, name: str, ssthresh: str) -> Map:
    """Struct_ops map ``name`` with its value written: the programs of the object, in their slots."""
    ops = obj.map(name)
    progs = {"ssthresh": obj.program(ssthresh), "cong_avoid": obj.program("cc_cong_avoid"),
             "undo_cwnd": obj.program("cc_undo_cwnd")}
    try:
        write_value(ops, "tcp_congestion_ops", {**progs, "name": CC.encode()})
    finally:
        for prog in progs.values():
            prog.close()  # the map holds its own references now
    return ops


def attach(ops: Map) -> Link:
    return link_or_skip("struct_ops", ops, None, STRUCT_OPS)


def map_id(m: Map) -> int:
    for line in Path(f"/proc/self/fdinfo/{m.fd}").read_text().splitlines():
        if line.startswith("map_id:"):
            return int(line.split()[1])
    raise AssertionError("no map_id in fdinfo")


def selectable(name: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())
        except FileNotFoundError:
            return False
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode() == name


def test_congestion_control_exists_while_the_link_lives(obj: Object) -> None:
    assert CC not in AVAILABLE.read_text().split()
    with ready_map(obj, "cc_small", "cc_ssthresh") as ops:
        assert CC not in AVAILABLE.read_text().split()  # a BPF_F_LINK map registers nothing by itself
        with attach(ops) as link:
            assert CC in AVAILABLE.read_text().split()
            assert selectable(CC)
            info = link.info()
            assert isinstance(info, StructOpsLinkInfo) and info.type == LinkType.STRUCT_OPS
            assert info.map_id == map_id(ops)
        assert CC not in AVAILABLE.read_text().split()
        assert not selectable(CC)


def test_update_map_swaps_the_ops(obj: Object) -> None:
    with ready_map(obj, "cc_small", "cc_ssthresh") as small, ready_map(obj, "cc_big", "cc_ssthresh_big") as big, \
            attach(small) as link:
        with pytest.raises(PermissionError):  # old_map is not the link's current map
            link.update_map(small, old_map=big)
        link.update_map(big, old_map=small)
        info = link.info()
        assert isinstance(info, StructOpsLinkInfo) and info.map_id == map_id(big)
        assert CC in AVAILABLE.read_text().split() and selectable(CC)
        link.update_map(small)
        info = link.info()
        assert isinstance(info, StructOpsLinkInfo) and info.map_id == map_id(small)
    assert CC not in AVAILABLE.read_text().split()


def test_link_needs_the_value_written(obj: Object) -> None:
    with obj.map("cc_small") as ops, pytest.raises(OSError, match="write_value") as exc:
        link_create(ops, None, STRUCT_OPS).close()
    assert exc.value.errno == errno.EINVAL
    assert CC not in AVAILABLE.read_text().split()


def test_build_value_checks_members() -> None:
    with pytest.raises(ValueError, match="no member 'nope'"):
        build_value("tcp_congestion_ops", {"nope": 3})
    with pytest.raises(ValueError, match="at most 15 bytes"):
        build_value("tcp_congestion_ops", {"name": b"x" * 16})
    with pytest.raises(ValueError, match="no struct bpf_struct_ops_no_such_ops"):
        build_value("no_such_ops", {})
    with pytest.raises(TypeError, match="program"):
        build_value("tcp_congestion_ops", {"ssthresh": 1.5})  # type: ignore[dict-item]
