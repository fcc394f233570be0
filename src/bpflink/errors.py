"""The one choke point that turns libbpf's negative return codes into exceptions.

``check(ret, what)`` returns ``ret`` when it is not negative, else raises ``OSError(errno, message)``:
Python picks the builtin subclass (EPERM -> ``PermissionError``, ENOENT -> ``FileNotFoundError``, ...), so
``except PermissionError`` works. The message names the operation, the errno and a hint on what to do.

>>> try:
...     check(-1, "link_create(CGROUP_INET_EGRESS)")
... except PermissionError as exc:
...     print(exc.errno, "EPERM" in str(exc))
1 True
"""

from __future__ import annotations

import errno as _errno
import os
from typing import NoReturn

# kernel-internal errnos that reach user space through bpf() but have no libc name
ENOTSUPP = 524
_EXTRA_NAMES = {ENOTSUPP: "ENOTSUPP", 525: "ETOOSMALL", 526: "ESERVERFAULT", 527: "EBADTYPE"}

_ANCHOR_MISSING = "the anchor (before=/after=/anchor=) is not attached at this hook, or does not exist"
# (errno, family or None) -> hint. The family is bpflink.families.family_of(attach_type).
_HINTS: dict[tuple[int, str | None], str] = {
    (_errno.EPERM, None): "needs root or CAP_BPF (+CAP_NET_ADMIN for network hooks, CAP_PERFMON for tracing); "
                          "a locked-down kernel also refuses",
    **{(_errno.EPERM, fam): "creating this link needs CAP_NET_ADMIN besides CAP_BPF (or root)"
       for fam in ("cgroup", "tcx", "netkit", "xdp", "netfilter", "netns", "sockmap")},
    **{(_errno.EPERM, fam): "creating this link needs CAP_PERFMON besides CAP_BPF (or root)"
       for fam in ("perf_event", "kprobe_multi", "uprobe_multi", "tracing", "iter")},
    (_errno.EACCES, None): "the verifier or an LSM refused: check the program type matches the attach type",
    (_errno.EINVAL, None): "the kernel rejected the arguments: wrong program type or expected_attach_type for "
                           "this attach type, bad flags, or an attach type this kernel does not know",
    (_errno.EBADF, None): "a file descriptor passed is not open or not of the right kind",
    (_errno.EOPNOTSUPP, None): "the kernel does not support this operation for this link kind",
    (ENOTSUPP, None): "the kernel does not support this (missing config option or JIT support)",
    (_errno.ENOENT, None): "the object does not exist (closed, detached, or wrong id/path)",
    (_errno.EEXIST, None): "this program is already attached there",
    (_errno.EBUSY, None): "the hook is already taken by another program or link",
    (_errno.E2BIG, None): "too many entries: the kernel caps this count",
    (_errno.ENOLINK, None): "the link was detached; create a new one",
    (_errno.ENOSPC, None): "the buffer passed was too small",
    (_errno.ESTALE, None): "expected_revision does not match the hook's current revision: query() it again",
    (_errno.ERANGE, None): "the position asked for conflicts with programs already attached, or the hook is full",
    (_errno.ENODEV, None): "no network device with that ifindex",
    (_errno.ENXIO, None): "the device is not of the kind this attach type needs",
    (_errno.EOPNOTSUPP, "kprobe_multi"): "kernel lacks CONFIG_FPROBE (kprobe_multi needs Linux >= 5.18 with fprobe)",
    (_errno.ESRCH, "kprobe_multi"): "a symbol is unknown or not traceable (see available_filter_functions)",
    (_errno.ESRCH, "uprobe_multi"): "no process with that pid",
    (_errno.EBADF, "uprobe_multi"): "path is not a regular file",
    (_errno.ENOENT, "uprobe_multi"): "path does not exist",
    (_errno.EINVAL, "uprobe_multi"): "an offset is invalid, or this kernel lacks uprobe_multi (Linux >= 6.6)",
    (_errno.EINVAL, "tcx"): "the kernel may lack tcx (Linux >= 6.6), or the anchor/flags are inconsistent",
    (_errno.ENXIO, "netkit"): "the device is not a netkit device",
    (_errno.EINVAL, "netkit"): "the kernel may lack netkit (CONFIG_NETKIT, Linux >= 6.7)",
    (_errno.ENOENT, "tcx"): _ANCHOR_MISSING,
    (_errno.ENOENT, "netkit"): _ANCHOR_MISSING,
    (_errno.ENOENT, "cgroup"): _ANCHOR_MISSING,
    (_errno.ENODEV, "tcx"): "no network device with that ifindex in the caller's network namespace",
    (_errno.EAFNOSUPPORT, "netfilter"): "pf must be NFPROTO_IPV4 or NFPROTO_IPV6",
    (_errno.EPROTO, "netfilter"): "hooknum must be one of NF_INET_* (< 5)",
    (_errno.ERANGE, "netfilter"): "priority must not be INT_MIN or INT_MAX (or > -400 with defrag)",
    (_errno.E2BIG, "netns"): "a network namespace holds one flow dissector (and up to 64 sk_lookup links); "
                             "close or update the link already there",
    (_errno.EINVAL, "netns"): "target must be an fd (or path) of a network namespace, e.g. /run/netns/<name>, "
                              "and the program type must match the attach type",
    (_errno.EINVAL, "sockmap"): "target must be a sockmap or sockhash map (fd or Map) and the program an SK_MSG/"
                                "SK_SKB program whose expected_attach_type matches",
    (_errno.EBUSY, "sockmap"): "the map already has a program in this slot, or a verdict and a stream verdict "
                               "program would both be attached (the kernel allows one of the two)",
    (_errno.EINVAL, "struct_ops"): "the prog argument must be a struct_ops map created with BPF_F_LINK "
                                   "(SEC(\".struct_ops.link\")) whose value was written "
                                   "(bpflink.struct_ops.write_value); update_map needs the same ops name",
    (_errno.EBUSY, "xdp"): "the device already has an XDP program; detach it or use another device",
    (_errno.EINVAL, "xdp"): "no device with that ifindex in this network namespace, a program that is not XDP, "
                            "or bad flags",
    (_errno.EINVAL, "perf_event"): "target must be a perf event fd (tracepoint, kprobe, uprobe) and the "
                                   "program type must match it",
    (_errno.EBADF, "perf_event"): "target must be a perf event fd (from perf_event_open: tracepoint, kprobe, "
                                  "uprobe)",
    (_errno.EINVAL, "tracing"): "the program's attach target is fixed at load (attach_btf_id); "
                                "load it with the right expected_attach_type",
    (_errno.EINVAL, "cgroup"): "target must be an fd of a cgroup v2 directory and the program's "
                               "expected_attach_type must match (with before/after: the anchor must be "
                               "attached there, by link if it was attached by link)",
    (_errno.EBADF, "cgroup"): "target must be an open fd of a cgroup v2 directory",
}


# program types whose load needs more than CAP_BPF (kernel/bpf/syscall.c: net-admin and perfmon program types)
_NET_ADMIN_PROGS = frozenset({
    "SCHED_CLS", "SCHED_ACT", "XDP", "LWT_IN", "LWT_OUT", "LWT_XMIT", "LWT_SEG6LOCAL", "SK_SKB", "SK_MSG",
    "FLOW_DISSECTOR", "CGROUP_DEVICE", "CGROUP_SOCK", "CGROUP_SOCK_ADDR", "CGROUP_SOCKOPT", "CGROUP_SYSCTL",
    "SOCK_OPS", "EXT", "NETFILTER"})
_PERFMON_PROGS = frozenset({"KPROBE", "TRACEPOINT", "PERF_EVENT", "RAW_TRACEPOINT", "RAW_TRACEPOINT_WRITABLE",
                            "TRACING", "LSM", "STRUCT_OPS", "EXT"})


def prog_load_eperm_hint(prog_type: str) -> str:
    """Which capabilities loading a program of type ``prog_type`` (``ProgType`` name) needs.

    >>> prog_load_eperm_hint("SCHED_CLS")
    'loading a SCHED_CLS program needs CAP_BPF and CAP_NET_ADMIN (or root); a locked-down kernel also refuses'
    """
    caps = ["CAP_BPF"]
    if prog_type in _NET_ADMIN_PROGS:
        caps.append("CAP_NET_ADMIN")
    if prog_type in _PERFMON_PROGS:
        caps.append("CAP_PERFMON")
    return f"loading a {prog_type} program needs {' and '.join(caps)} (or root); a locked-down kernel also refuses"


def errno_name(err: int) -> str:
    """``EPERM`` for 1, ``ENOTSUPP`` for 524, ``E<n>`` when nameless."""
    return _errno.errorcode.get(err) or _EXTRA_NAMES.get(err) or f"E{err}"


def strerror(err: int) -> str:
    if err == ENOTSUPP:
        return "Operation not supported (kernel ENOTSUPP)"
    return os.strerror(err)


def hint_for(err: int, family: str | None = None) -> str | None:
    """The most specific hint for an errno, for an attach family if one is given."""
    return _HINTS.get((err, family)) or _HINTS.get((err, None))


class NotSupportedError(OSError):
    """The running kernel, or the headers bpflink was compiled against, lack a feature.

    An ``OSError`` (errno ``EOPNOTSUPP``), so ``except OSError`` catches it too.
    """

    def __init__(self, feature: str, reason: str, *, min_kernel: str | None = None) -> None:
        self.feature = feature
        self.reason = reason
        self.min_kernel = min_kernel
        needs = f" (needs Linux >= {min_kernel})" if min_kernel else ""
        super().__init__(_errno.EOPNOTSUPP, f"{feature} not supported: {reason}{needs}")


class VerifierError(OSError):
    """The kernel refused to load a program; ``log`` holds the verifier's log."""

    def __init__(self, err: int, message: str, log: str) -> None:
        super().__init__(err, message)
        self.log = log

    def __str__(self) -> str:
        tail = "\n".join(self.log.rstrip().splitlines()[-20:])
        return f"{super().__str__()}\nverifier log (last lines):\n{tail}" if tail else super().__str__()


def error(err: int, what: str, *, family: str | None = None, hint: str | None = None) -> OSError:
    """Build the exception for errno ``err`` raised by operation ``what``."""
    hint = hint or hint_for(err, family)
    message = f"{what}: {strerror(err)} [{errno_name(err)}]"
    if hint:
        message += f"; {hint}"
    return OSError(err, message)


def check(ret: int, what: str, *, family: str | None = None, hint: str | None = None) -> int:
    """Return ``ret`` if it is >= 0, else raise the ``OSError`` subclass for ``-ret``."""
    if ret >= 0:
        return ret
    raise error(-ret, what, family=family, hint=hint)


def raise_errno(err: int, what: str, *, family: str | None = None) -> NoReturn:
    raise error(err, what, family=family)


__all__ = ["ENOTSUPP", "NotSupportedError", "VerifierError", "check", "errno_name", "error", "hint_for",
           "prog_load_eperm_hint"]
