"""The kernel's enums and flag sets as Python enums. Names are ours to list; every value is read from the
compiled extension (the C compiler evaluated the real headers), never typed in.

A name the compiled headers lack (an older system libbpf-dev) still exists so code can name it, but gets a
negative placeholder value and ``available`` is False: using it raises ``NotSupportedError``. A flag the headers
lack is a ``bpflink._native.Absent`` (not a member, so it cannot alias another): any use raises
``NotSupportedError`` naming the header.
A value the headers do not name (newer kernel, e.g. in ``bpf_link_info``) becomes a pseudo-member
``UNKNOWN_<n>`` rather than a ``ValueError``.

>>> AttachType.CGROUP_INET_EGRESS.cname
'BPF_CGROUP_INET_EGRESS'
>>> AttachType["TCX_INGRESS"] is AttachType.TCX_INGRESS
True
"""

from __future__ import annotations

import enum
import itertools
from typing import Any

from ._native import Absent, constant

_placeholders = itertools.count(-1, -1)


def _c(name: str) -> int:
    value = constant(name)
    return next(_placeholders) if isinstance(value, Absent) else value


class _HeaderEnum(enum.IntEnum):
    """An ``IntEnum`` whose values come from the compiled headers."""

    @property
    def cname(self) -> str:
        """The C enumerator's name."""
        return _CPREFIX[type(self).__name__] + self.name

    @property
    def available(self) -> bool:
        """False when the headers bpflink was compiled against do not know this name."""
        return self.value >= 0

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, int) or value < 0:
            return None
        pseudo = int.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value}"
        pseudo._value_ = value
        return pseudo

    @classmethod
    def parse(cls, text: str) -> Any:
        """Look a member up by name, case-insensitive, with or without the C prefix.

        >>> AttachType.parse("tcx_ingress") is AttachType.TCX_INGRESS
        True
        """
        key = text.strip().upper()
        prefix = _CPREFIX[cls.__name__]
        if key.startswith(prefix):
            key = key[len(prefix):]
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown {cls.__name__} {text!r}") from None


class AttachType(_HeaderEnum):
    """``enum bpf_attach_type``: what a link attaches as (the third argument of ``bpf_link_create``)."""

    CGROUP_INET_INGRESS = _c("BPF_CGROUP_INET_INGRESS")
    CGROUP_INET_EGRESS = _c("BPF_CGROUP_INET_EGRESS")
    CGROUP_INET_SOCK_CREATE = _c("BPF_CGROUP_INET_SOCK_CREATE")
    CGROUP_SOCK_OPS = _c("BPF_CGROUP_SOCK_OPS")
    SK_SKB_STREAM_PARSER = _c("BPF_SK_SKB_STREAM_PARSER")
    SK_SKB_STREAM_VERDICT = _c("BPF_SK_SKB_STREAM_VERDICT")
    CGROUP_DEVICE = _c("BPF_CGROUP_DEVICE")
    SK_MSG_VERDICT = _c("BPF_SK_MSG_VERDICT")
    CGROUP_INET4_BIND = _c("BPF_CGROUP_INET4_BIND")
    CGROUP_INET6_BIND = _c("BPF_CGROUP_INET6_BIND")
    CGROUP_INET4_CONNECT = _c("BPF_CGROUP_INET4_CONNECT")
    CGROUP_INET6_CONNECT = _c("BPF_CGROUP_INET6_CONNECT")
    CGROUP_INET4_POST_BIND = _c("BPF_CGROUP_INET4_POST_BIND")
    CGROUP_INET6_POST_BIND = _c("BPF_CGROUP_INET6_POST_BIND")
    CGROUP_UDP4_SENDMSG = _c("BPF_CGROUP_UDP4_SENDMSG")
    CGROUP_UDP6_SENDMSG = _c("BPF_CGROUP_UDP6_SENDMSG")
    LIRC_MODE2 = _c("BPF_LIRC_MODE2")
    FLOW_DISSECTOR = _c("BPF_FLOW_DISSECTOR")
    CGROUP_SYSCTL = _c("BPF_CGROUP_SYSCTL")
    CGROUP_UDP4_RECVMSG = _c("BPF_CGROUP_UDP4_RECVMSG")
    CGROUP_UDP6_RECVMSG = _c("BPF_CGROUP_UDP6_RECVMSG")
    CGROUP_GETSOCKOPT = _c("BPF_CGROUP_GETSOCKOPT")
    CGROUP_SETSOCKOPT = _c("BPF_CGROUP_SETSOCKOPT")
    TRACE_RAW_TP = _c("BPF_TRACE_RAW_TP")
    TRACE_FENTRY = _c("BPF_TRACE_FENTRY")
    TRACE_FEXIT = _c("BPF_TRACE_FEXIT")
    MODIFY_RETURN = _c("BPF_MODIFY_RETURN")
    LSM_MAC = _c("BPF_LSM_MAC")
    TRACE_ITER = _c("BPF_TRACE_ITER")
    CGROUP_INET4_GETPEERNAME = _c("BPF_CGROUP_INET4_GETPEERNAME")
    CGROUP_INET6_GETPEERNAME = _c("BPF_CGROUP_INET6_GETPEERNAME")
    CGROUP_INET4_GETSOCKNAME = _c("BPF_CGROUP_INET4_GETSOCKNAME")
    CGROUP_INET6_GETSOCKNAME = _c("BPF_CGROUP_INET6_GETSOCKNAME")
    XDP_DEVMAP = _c("BPF_XDP_DEVMAP")
    CGROUP_INET_SOCK_RELEASE = _c("BPF_CGROUP_INET_SOCK_RELEASE")
    XDP_CPUMAP = _c("BPF_XDP_CPUMAP")
    SK_LOOKUP = _c("BPF_SK_LOOKUP")
    XDP = _c("BPF_XDP")
    SK_SKB_VERDICT = _c("BPF_SK_SKB_VERDICT")
    SK_REUSEPORT_SELECT = _c("BPF_SK_REUSEPORT_SELECT")
    SK_REUSEPORT_SELECT_OR_MIGRATE = _c("BPF_SK_REUSEPORT_SELECT_OR_MIGRATE")
    PERF_EVENT = _c("BPF_PERF_EVENT")
    TRACE_KPROBE_MULTI = _c("BPF_TRACE_KPROBE_MULTI")
    LSM_CGROUP = _c("BPF_LSM_CGROUP")
    STRUCT_OPS = _c("BPF_STRUCT_OPS")
    NETFILTER = _c("BPF_NETFILTER")
    TCX_INGRESS = _c("BPF_TCX_INGRESS")
    TCX_EGRESS = _c("BPF_TCX_EGRESS")
    TRACE_UPROBE_MULTI = _c("BPF_TRACE_UPROBE_MULTI")
    CGROUP_UNIX_CONNECT = _c("BPF_CGROUP_UNIX_CONNECT")
    CGROUP_UNIX_SENDMSG = _c("BPF_CGROUP_UNIX_SENDMSG")
    CGROUP_UNIX_RECVMSG = _c("BPF_CGROUP_UNIX_RECVMSG")
    CGROUP_UNIX_GETPEERNAME = _c("BPF_CGROUP_UNIX_GETPEERNAME")
    CGROUP_UNIX_GETSOCKNAME = _c("BPF_CGROUP_UNIX_GETSOCKNAME")
    NETKIT_PRIMARY = _c("BPF_NETKIT_PRIMARY")
    NETKIT_PEER = _c("BPF_NETKIT_PEER")
    TRACE_KPROBE_SESSION = _c("BPF_TRACE_KPROBE_SESSION")
    TRACE_UPROBE_SESSION = _c("BPF_TRACE_UPROBE_SESSION")
    TRACE_FSESSION = _c("BPF_TRACE_FSESSION")


class ProgType(_HeaderEnum):
    """``enum bpf_prog_type``."""

    UNSPEC = _c("BPF_PROG_TYPE_UNSPEC")
    SOCKET_FILTER = _c("BPF_PROG_TYPE_SOCKET_FILTER")
    KPROBE = _c("BPF_PROG_TYPE_KPROBE")
    SCHED_CLS = _c("BPF_PROG_TYPE_SCHED_CLS")
    SCHED_ACT = _c("BPF_PROG_TYPE_SCHED_ACT")
    TRACEPOINT = _c("BPF_PROG_TYPE_TRACEPOINT")
    XDP = _c("BPF_PROG_TYPE_XDP")
    PERF_EVENT = _c("BPF_PROG_TYPE_PERF_EVENT")
    CGROUP_SKB = _c("BPF_PROG_TYPE_CGROUP_SKB")
    CGROUP_SOCK = _c("BPF_PROG_TYPE_CGROUP_SOCK")
    LWT_IN = _c("BPF_PROG_TYPE_LWT_IN")
    LWT_OUT = _c("BPF_PROG_TYPE_LWT_OUT")
    LWT_XMIT = _c("BPF_PROG_TYPE_LWT_XMIT")
    SOCK_OPS = _c("BPF_PROG_TYPE_SOCK_OPS")
    SK_SKB = _c("BPF_PROG_TYPE_SK_SKB")
    CGROUP_DEVICE = _c("BPF_PROG_TYPE_CGROUP_DEVICE")
    SK_MSG = _c("BPF_PROG_TYPE_SK_MSG")
    RAW_TRACEPOINT = _c("BPF_PROG_TYPE_RAW_TRACEPOINT")
    CGROUP_SOCK_ADDR = _c("BPF_PROG_TYPE_CGROUP_SOCK_ADDR")
    LWT_SEG6LOCAL = _c("BPF_PROG_TYPE_LWT_SEG6LOCAL")
    LIRC_MODE2 = _c("BPF_PROG_TYPE_LIRC_MODE2")
    SK_REUSEPORT = _c("BPF_PROG_TYPE_SK_REUSEPORT")
    FLOW_DISSECTOR = _c("BPF_PROG_TYPE_FLOW_DISSECTOR")
    CGROUP_SYSCTL = _c("BPF_PROG_TYPE_CGROUP_SYSCTL")
    RAW_TRACEPOINT_WRITABLE = _c("BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE")
    CGROUP_SOCKOPT = _c("BPF_PROG_TYPE_CGROUP_SOCKOPT")
    TRACING = _c("BPF_PROG_TYPE_TRACING")
    STRUCT_OPS = _c("BPF_PROG_TYPE_STRUCT_OPS")
    EXT = _c("BPF_PROG_TYPE_EXT")
    LSM = _c("BPF_PROG_TYPE_LSM")
    SK_LOOKUP = _c("BPF_PROG_TYPE_SK_LOOKUP")
    SYSCALL = _c("BPF_PROG_TYPE_SYSCALL")
    NETFILTER = _c("BPF_PROG_TYPE_NETFILTER")


class LinkType(_HeaderEnum):
    """``enum bpf_link_type``: the kind of an existing link (``bpf_link_info.type``); not an attach type."""

    UNSPEC = _c("BPF_LINK_TYPE_UNSPEC")
    RAW_TRACEPOINT = _c("BPF_LINK_TYPE_RAW_TRACEPOINT")
    TRACING = _c("BPF_LINK_TYPE_TRACING")
    CGROUP = _c("BPF_LINK_TYPE_CGROUP")
    ITER = _c("BPF_LINK_TYPE_ITER")
    NETNS = _c("BPF_LINK_TYPE_NETNS")
    XDP = _c("BPF_LINK_TYPE_XDP")
    PERF_EVENT = _c("BPF_LINK_TYPE_PERF_EVENT")
    KPROBE_MULTI = _c("BPF_LINK_TYPE_KPROBE_MULTI")
    STRUCT_OPS = _c("BPF_LINK_TYPE_STRUCT_OPS")
    NETFILTER = _c("BPF_LINK_TYPE_NETFILTER")
    TCX = _c("BPF_LINK_TYPE_TCX")
    UPROBE_MULTI = _c("BPF_LINK_TYPE_UPROBE_MULTI")
    NETKIT = _c("BPF_LINK_TYPE_NETKIT")
    SOCKMAP = _c("BPF_LINK_TYPE_SOCKMAP")


class MapType(_HeaderEnum):
    """``enum bpf_map_type``."""

    UNSPEC = _c("BPF_MAP_TYPE_UNSPEC")
    HASH = _c("BPF_MAP_TYPE_HASH")
    ARRAY = _c("BPF_MAP_TYPE_ARRAY")
    PROG_ARRAY = _c("BPF_MAP_TYPE_PROG_ARRAY")
    PERF_EVENT_ARRAY = _c("BPF_MAP_TYPE_PERF_EVENT_ARRAY")
    PERCPU_HASH = _c("BPF_MAP_TYPE_PERCPU_HASH")
    PERCPU_ARRAY = _c("BPF_MAP_TYPE_PERCPU_ARRAY")
    STACK_TRACE = _c("BPF_MAP_TYPE_STACK_TRACE")
    CGROUP_ARRAY = _c("BPF_MAP_TYPE_CGROUP_ARRAY")
    LRU_HASH = _c("BPF_MAP_TYPE_LRU_HASH")
    LRU_PERCPU_HASH = _c("BPF_MAP_TYPE_LRU_PERCPU_HASH")
    LPM_TRIE = _c("BPF_MAP_TYPE_LPM_TRIE")
    ARRAY_OF_MAPS = _c("BPF_MAP_TYPE_ARRAY_OF_MAPS")
    HASH_OF_MAPS = _c("BPF_MAP_TYPE_HASH_OF_MAPS")
    DEVMAP = _c("BPF_MAP_TYPE_DEVMAP")
    SOCKMAP = _c("BPF_MAP_TYPE_SOCKMAP")
    CPUMAP = _c("BPF_MAP_TYPE_CPUMAP")
    XSKMAP = _c("BPF_MAP_TYPE_XSKMAP")
    SOCKHASH = _c("BPF_MAP_TYPE_SOCKHASH")
    CGROUP_STORAGE_DEPRECATED = _c("BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED")
    REUSEPORT_SOCKARRAY = _c("BPF_MAP_TYPE_REUSEPORT_SOCKARRAY")
    PERCPU_CGROUP_STORAGE_DEPRECATED = _c("BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED")
    QUEUE = _c("BPF_MAP_TYPE_QUEUE")
    STACK = _c("BPF_MAP_TYPE_STACK")
    SK_STORAGE = _c("BPF_MAP_TYPE_SK_STORAGE")
    DEVMAP_HASH = _c("BPF_MAP_TYPE_DEVMAP_HASH")
    STRUCT_OPS = _c("BPF_MAP_TYPE_STRUCT_OPS")
    RINGBUF = _c("BPF_MAP_TYPE_RINGBUF")
    INODE_STORAGE = _c("BPF_MAP_TYPE_INODE_STORAGE")
    TASK_STORAGE = _c("BPF_MAP_TYPE_TASK_STORAGE")
    BLOOM_FILTER = _c("BPF_MAP_TYPE_BLOOM_FILTER")
    USER_RINGBUF = _c("BPF_MAP_TYPE_USER_RINGBUF")
    CGRP_STORAGE = _c("BPF_MAP_TYPE_CGRP_STORAGE")
    ARENA = _c("BPF_MAP_TYPE_ARENA")
    INSN_ARRAY = _c("BPF_MAP_TYPE_INSN_ARRAY")

_CPREFIX = {"AttachType": "BPF_", "ProgType": "BPF_PROG_TYPE_", "LinkType": "BPF_LINK_TYPE_",
            "MapType": "BPF_MAP_TYPE_"}


def _flag(name: str) -> int:
    return constant(name)


class MprogFlags(enum.IntFlag):
    """Ordering flags of multi-program hooks (tcx, netkit, cgroup): ``link_create_opts.flags``."""

    BEFORE = _flag("BPF_F_BEFORE")
    AFTER = _flag("BPF_F_AFTER")
    ID = _flag("BPF_F_ID")
    LINK = _flag("BPF_F_LINK")
    REPLACE = _flag("BPF_F_REPLACE")


class XdpFlags(enum.IntFlag):
    """``XDP_FLAGS_*`` for XDP links (at most one mode bit)."""

    UPDATE_IF_NOEXIST = _flag("XDP_FLAGS_UPDATE_IF_NOEXIST")
    SKB_MODE = _flag("XDP_FLAGS_SKB_MODE")
    DRV_MODE = _flag("XDP_FLAGS_DRV_MODE")
    HW_MODE = _flag("XDP_FLAGS_HW_MODE")
    REPLACE = _flag("XDP_FLAGS_REPLACE")


class MapUpdateFlags(enum.IntFlag):
    """``flags`` of ``Map.update``: ``ANY`` (create or replace), ``NOEXIST`` (create only), ``EXIST`` (replace only),
    ``LOCK`` (take the value's ``bpf_spin_lock``)."""

    ANY = _flag("BPF_ANY")
    NOEXIST = _flag("BPF_NOEXIST")
    EXIST = _flag("BPF_EXIST")
    LOCK = _flag("BPF_F_LOCK")


class NfProto(enum.IntEnum):
    """Netfilter protocol families a BPF netfilter link accepts."""

    IPV4 = _flag("NFPROTO_IPV4")
    IPV6 = _flag("NFPROTO_IPV6")


class NfInetHook(enum.IntEnum):
    """``NF_INET_*`` hooks."""

    PRE_ROUTING = _flag("NF_INET_PRE_ROUTING")
    LOCAL_IN = _flag("NF_INET_LOCAL_IN")
    FORWARD = _flag("NF_INET_FORWARD")
    LOCAL_OUT = _flag("NF_INET_LOCAL_OUT")
    POST_ROUTING = _flag("NF_INET_POST_ROUTING")


__all__ = ["AttachType", "LinkType", "MapType", "MapUpdateFlags", "MprogFlags", "NfInetHook", "NfProto", "ProgType",
           "XdpFlags"]
