"""Child process of test_maps.py: create every map type the kernel offers and call every public Map method.

Prints one JSON object: {type: {"created": bool, "why": refusal, "calls": {method: "ok ..." | "<Exception>: ..."}}}.
A crash (signal) or a hang shows as the child's exit status, not as a killed test run.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
from typing import Any

from bpflink import Map, MapType
from bpflink._native import lib
from bpflink.enums import MapUpdateFlags

NO_PREALLOC = int(lib.BPF_F_NO_PREALLOC)
MMAPABLE = int(lib.BPF_F_MMAPABLE)


def _btf() -> int:
    """A BTF object with u32 (id 1) and u64 (id 2): local storage maps need typed keys/values."""
    btf = lib.btf__new_empty()
    assert lib.btf__add_int(btf, b"u32", 4, 0) == 1 and lib.btf__add_int(btf, b"u64", 8, 0) == 2
    assert lib.btf__load_into_kernel(btf) == 0
    fd = os.dup(lib.btf__fd(btf))
    lib.btf__free(btf)
    return fd


SPECS: dict[str, dict[str, Any]] = {
    "HASH": {}, "ARRAY": {}, "PERCPU_HASH": {}, "PERCPU_ARRAY": {}, "LRU_HASH": {}, "LRU_PERCPU_HASH": {},
    "PROG_ARRAY": {"value_size": 4}, "PERF_EVENT_ARRAY": {"value_size": 4}, "CGROUP_ARRAY": {"value_size": 4},
    "STACK_TRACE": {"value_size": 64}, "LPM_TRIE": {"key_size": 8, "flags": NO_PREALLOC},
    "ARRAY_OF_MAPS": {"value_size": 4, "inner": True}, "HASH_OF_MAPS": {"value_size": 4, "inner": True},
    "DEVMAP": {"value_size": 4}, "DEVMAP_HASH": {"value_size": 4}, "SOCKMAP": {"value_size": 4},
    "SOCKHASH": {"value_size": 4}, "CPUMAP": {"value_size": 4}, "XSKMAP": {"value_size": 4},
    "REUSEPORT_SOCKARRAY": {"value_size": 4},
    "CGROUP_STORAGE_DEPRECATED": {"key_size": 8, "max_entries": 0},
    "PERCPU_CGROUP_STORAGE_DEPRECATED": {"key_size": 8, "max_entries": 0},
    "QUEUE": {"key_size": 0}, "STACK": {"key_size": 0}, "BLOOM_FILTER": {"key_size": 0, "max_entries": 16},
    "RINGBUF": {"key_size": 0, "value_size": 0, "max_entries": 1 << 16},
    "USER_RINGBUF": {"key_size": 0, "value_size": 0, "max_entries": 1 << 16},
    "SK_STORAGE": {"btf": True}, "INODE_STORAGE": {"btf": True}, "TASK_STORAGE": {"btf": True},
    "CGRP_STORAGE": {"btf": True},
    "ARENA": {"key_size": 0, "value_size": 0, "max_entries": 1, "flags": MMAPABLE},
    "STRUCT_OPS": {"skip": "a struct_ops map needs a kernel struct_ops value type: made by Object from "
                           "SEC(\".struct_ops\") (tests/test_struct_ops.py)"},
    "INSN_ARRAY": {"value_size": 8},
}


def create(mtype: MapType, spec: dict[str, Any], btf_fd: int) -> Map:
    args: dict[str, Any] = {"key_size": spec.get("key_size", 4), "value_size": spec.get("value_size", 8),
                            "max_entries": spec.get("max_entries", 4), "flags": spec.get("flags", 0)}
    if spec.get("btf"):
        args.update(key_size=4, value_size=8, max_entries=0, flags=NO_PREALLOC, btf_fd=btf_fd, btf_key_type_id=1,
                    btf_value_type_id=2)
    if spec.get("inner"):
        with Map.create(MapType.ARRAY, key_size=4, value_size=4, max_entries=1) as inner:
            return Map.create(mtype, inner_map=inner, **args)
    return Map.create(mtype, **args)


def call(m: Map, sock: socket.socket, pin_dir: str) -> dict[str, str]:
    key: Any = 0 if m.key_size in (4, 8) else b"\0" * m.key_size
    if m.map_type == MapType.LPM_TRIE:
        key = (32).to_bytes(4, "little") + b"\x7f\0\0\1"
    if m.map_type in (MapType.SK_STORAGE,):
        key = sock.fileno()
    value: Any = 7 if m.value_size else b""
    if m.map_type in (MapType.SOCKMAP, MapType.SOCKHASH, MapType.REUSEPORT_SOCKARRAY):
        value = sock.fileno()
    calls = {
        "info": lambda: m.info().type.name, "id": lambda: m.id, "repr": lambda: repr(m),
        "update": lambda: m.update(key, value), "update_noexist": lambda: m.update(key, value, MapUpdateFlags.NOEXIST),
        "lookup": lambda: m.lookup(key), "lookup_int": lambda: m.lookup_int(key), "contains": lambda: key in m,
        "len": lambda: len(m), "count": lambda: m.count(), "keys": lambda: list(m.keys()),
        "values": lambda: list(m.values()), "items": lambda: list(m.items()),
        "lookup_batch": lambda: m.lookup_batch().count, "sum": lambda: m.sum(key),
        "update_batch": lambda: m.update_batch([key], [value]), "delete": lambda: m.delete(key),
        "delete_batch": lambda: m.delete_batch([key]),
        "lookup_and_delete_batch": lambda: m.lookup_and_delete_batch().count,
        "push": lambda: m.push(value), "peek": lambda: m.peek(), "pop": lambda: m.pop(),
        "may_contain": lambda: m.may_contain(value),
        "pin_unpin": lambda: (m.pin(f"{pin_dir}/{m.map_type.name}"), m.unpin()),
        "from_id": lambda: Map.from_id(m.id).close(), "freeze": lambda: m.freeze(),
        "update_after_freeze": lambda: m.update(key, value),
    }
    out: dict[str, str] = {}
    for name, fn in calls.items():
        try:
            out[name] = f"ok {fn()!r}"[:120]
        except (TypeError, ValueError, KeyError, OSError) as exc:
            out[name] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def main(pin_dir: str | None = None) -> None:
    pin_dir = pin_dir or sys.argv[1]
    btf_fd = _btf()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    report: dict[str, Any] = {}
    for mtype in MapType:
        if not mtype.available or mtype == MapType.UNSPEC:
            continue
        spec = SPECS.get(mtype.name, {})
        if "skip" in spec:
            report[mtype.name] = {"created": False, "why": spec["skip"]}
            continue
        try:
            m = create(mtype, spec, btf_fd)
        except OSError as exc:
            report[mtype.name] = {"created": False, "why": f"{errno.errorcode.get(exc.errno or 0)}: {exc}"}
            continue
        with m:
            report[mtype.name] = {"created": True, "calls": call(m, sock, pin_dir)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
