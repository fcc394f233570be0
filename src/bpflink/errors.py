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
from collections.abc import Callable

# kernel-internal errnos that reach user space through bpf() but have no libc name
ENOTSUPP = 524
_EXTRA_NAMES = {ENOTSUPP: "ENOTSUPP", 525: "ETOOSMALL", 526: "ESERVERFAULT", 527: "EBADTYPE"}

# errno -> hint for creating a link, when its family's record (bpflink.families: hints, capabilities) has none
_HINTS: dict[int, str] = {
    _errno.EPERM: "needs root or CAP_BPF (+CAP_NET_ADMIN for network hooks, CAP_PERFMON for tracing); "
                  "a locked-down kernel also refuses",
    _errno.EACCES: "the verifier or an LSM refused: check the program type matches the attach type",
    _errno.EINVAL: "the kernel rejected the arguments: wrong program type or expected_attach_type for "
                   "this attach type, bad flags, or an attach type this kernel does not know",
    _errno.EBADF: "a file descriptor passed is not open or not of the right kind",
    _errno.EOPNOTSUPP: "the kernel does not support this operation for this link kind",
    ENOTSUPP: "the kernel does not support this (missing config option or JIT support)",
    _errno.ENOENT: "the object does not exist (closed, detached, or wrong id/path)",
    _errno.EEXIST: "this program is already attached there",
    _errno.EBUSY: "the hook is already taken by another program or link",
    _errno.E2BIG: "too many entries: the kernel caps this count",
    _errno.ENOLINK: "the link was detached; create a new one",
    _errno.ENOSPC: "the buffer passed was too small",
    _errno.ESTALE: "expected_revision does not match the hook's current revision: query() it again",
    _errno.ERANGE: "the position asked for conflicts with programs already attached, or the hook is full",
    _errno.ENODEV: "no network device with that ifindex",
    _errno.ENXIO: "the device is not of the kind this attach type needs",
}


# (operation, errno) -> hint for the operations other than link_create (whose hints are per family). The
# operation is the ``op=`` of error()/check(), else read from the message: "map_update_elem(...)" ->
# "map_update_elem", "link CGROUP_INET_EGRESS: update" -> "update".
_GET_BY_ID = "opening an object by id needs CAP_SYS_ADMIN (BPF_*_GET_FD_BY_ID)"
_NEXT_ID = "listing BPF objects needs CAP_SYS_ADMIN (BPF_*_GET_NEXT_ID)"
_MAP_FLAGS = ("bad flags for this map type (BPF_ANY/BPF_NOEXIST/BPF_EXIST, BPF_F_LOCK only with a spin lock), "
              "or the key/value does not fit the map")
_OP_HINTS: dict[tuple[str, int], str] = {
    ("update", _errno.EINVAL): "the new program must have the link's program type and expected_attach_type, "
                               "and this link kind must support update",
    ("update", _errno.EPERM): "old_prog is not the link's current program, or updating needs the privileges "
                              "creating the link needed",
    ("update", _errno.EBADF): "new_prog/old_prog must be open BPF program fds",
    ("update", _errno.EOPNOTSUPP): "this kind of link cannot be updated; create a new one",
    ("update_map", _errno.EBADF): "new_map/old_map must be open struct_ops map fds",
    ("detach", _errno.EOPNOTSUPP): "this kind of link cannot be detached; close every fd to it and remove its "
                                   "pins instead",
    ("detach", _errno.EINVAL): "this kind of link cannot be detached; close every fd to it and remove its pins",
    ("pin", _errno.EEXIST): "the path exists already: choose another or remove the old pin first",
    ("pin", _errno.ENOENT): "the parent directory does not exist",
    ("pin", _errno.EPERM): "the path must be on a bpffs mount (mount -t bpf bpf /sys/fs/bpf)",
    ("pin", _errno.EACCES): "no write permission in that bpffs directory",
    ("bpf_obj_get", _errno.ENOENT): "nothing is pinned at that path",
    ("bpf_obj_get", _errno.EACCES): "the path is not a pinned BPF object (a directory or another file), or "
                                    "you may not open it",
    ("bpf_obj_get", _errno.EPERM): "the path is not on a bpffs mount, or you may not open it",
    ("unpin", _errno.ENOENT): "the pin was removed by someone else; nothing was deleted",
    ("iter_create", _errno.EINVAL): "only iterator links (AttachType.TRACE_ITER) can be read",
    ("iter_create", _errno.EOPNOTSUPP): "only iterator links (AttachType.TRACE_ITER) can be read",
    ("get_fd_by_id", _errno.EPERM): _GET_BY_ID,
    ("get_fd_by_id", _errno.ENOENT): "no object with that id (it was closed meanwhile, or never existed)",
    ("get_next_id", _errno.EPERM): _NEXT_ID,
    ("get_info_by_fd", _errno.EINVAL): "the fd is not a BPF object of this kind",
    ("get_info_by_fd", _errno.EBADF): "the fd is not open (closed underneath its owner?)",
    ("prog_query", _errno.EPERM): "querying a hook needs CAP_NET_ADMIN or CAP_SYS_ADMIN (root)",
    ("prog_query", _errno.EINVAL): "this attach type cannot be queried at this target, or the target is not of "
                                   "the kind the attach type needs",
    ("prog_query", _errno.EBADF): "target must be an open fd of the kind this attach type needs",
    ("prog_query", _errno.EAGAIN): "the hook kept changing while it was read (programs attached and detached "
                                   "meanwhile); try again",
    ("map_create", _errno.EINVAL): "the kernel refused the map's parameters: key_size/value_size/max_entries or "
                                   "flags invalid for this map type, or a map type this kernel lacks",
    ("map_create", _errno.EPERM): "creating maps needs CAP_BPF (or root)",
    ("map_create", _errno.E2BIG): "key_size/value_size too large for this map type",
    ("map_update_elem", _errno.EINVAL): _MAP_FLAGS,
    ("map_update_elem", _errno.E2BIG): "the map is full (max_entries) or the index is out of range",
    ("map_update_elem", _errno.EEXIST): "the key exists and BPF_NOEXIST was given",
    ("map_update_elem", _errno.ENOENT): "the key does not exist and BPF_EXIST was given",
    ("map_update_elem", _errno.EPERM): "the map is read-only for this caller (BPF_F_RDONLY) or needs CAP_BPF",
    ("map_delete_elem", _errno.EINVAL): "array maps have no delete: update the element to zero instead",
    ("map_delete_elem", _errno.ENOENT): "no such key",
    ("map_lookup_elem", _errno.EINVAL): "bad flags for this map type, or the key does not fit the map",
    ("map_lookup_elem", _errno.EPERM): "the map is write-only for this caller (BPF_F_WRONLY) or needs CAP_BPF",
    ("perf_event_open", _errno.ENOENT): "no such tracepoint, kernel function or file",
    ("perf_event_open", _errno.EINVAL): "the probe point is invalid (offset, function or file), or pid/cpu are "
                                        "out of range",
    ("perf_event_open", _errno.EACCES): "perf events need CAP_PERFMON (or root), or kernel.perf_event_paranoid "
                                        "is too strict",
    ("perf_event_open", _errno.EPERM): "perf events need CAP_PERFMON (or root), or kernel.perf_event_paranoid "
                                       "is too strict",
    ("perf_event_open", _errno.ESRCH): "no process with that pid",
    ("perf_event_open", _errno.EBUSY): "the probe point is taken (another exclusive probe is there)",
    ("prog_load", _errno.EACCES): "the verifier refused the program (its log says why)",
    ("prog_load", _errno.EINVAL): "the kernel refused the load arguments: program type, expected_attach_type, "
                                  "attach_btf_id, prog_flags, log_level or license (or the program itself)",
    ("prog_load", _errno.ENOSPC): "the verifier log did not fit in its buffer",
    ("close", _errno.EBADF): "the fd was closed underneath its owner (by os.close or another library)",
}
# what the kernel or libc answers mean when no operation-specific hint applies (no link-creation wording)
_GENERIC: dict[int, str] = {
    _errno.EPERM: "needs root or CAP_BPF (and CAP_NET_ADMIN/CAP_PERFMON/CAP_SYS_ADMIN for some operations); a "
                  "locked-down kernel also refuses",
    _errno.EBADF: "a file descriptor passed is not open or not of the right kind",
    _errno.ENOENT: "the object does not exist (closed, detached, or wrong id/path)",
    _errno.E2BIG: "too large: the kernel caps this size or count",
    _errno.ENOLINK: "the link was detached; create a new one",
    _errno.ENOSPC: "the buffer passed was too small",
    ENOTSUPP: "the kernel does not support this (missing config option or JIT support)",
    _errno.EOPNOTSUPP: "the kernel does not support this operation for this object",
}
_ALIASES = {"prog_get_fd_by_id": "get_fd_by_id", "link_get_fd_by_id": "get_fd_by_id",
            "map_get_fd_by_id": "get_fd_by_id", "btf_get_fd_by_id": "get_fd_by_id",
            "prog_get_next_id": "get_next_id", "link_get_next_id": "get_next_id", "map_get_next_id": "get_next_id",
            "btf_get_next_id": "get_next_id", "prog_get_info_by_fd": "get_info_by_fd",
            "link_get_info_by_fd": "get_info_by_fd", "map_get_info_by_fd": "get_info_by_fd",
            "obj_get_info_by_fd": "get_info_by_fd", "bpf_obj_get_info_by_fd": "get_info_by_fd",
            "obj_get": "bpf_obj_get", "bpf_link_create": "link_create", "bpf_prog_query": "prog_query",
            "iter_create": "iter_create", "bpf_map_update_elem": "map_update_elem",
            "bpf_map_lookup_elem": "map_lookup_elem", "bpf_map_delete_elem": "map_delete_elem",
            "bpf_map_create": "map_create", "query": "prog_query"}


def operation_of(what: str) -> str:
    """The operation a message names, as the hint tables key it.

    >>> operation_of("link CGROUP_INET_EGRESS: update"), operation_of("map_update_elem(counts)")
    ('update', 'map_update_elem')
    """
    tail = what.rsplit(": ", 1)[-1]
    word = tail.split("(", 1)[0].split(" ", 1)[0].strip()
    return _ALIASES.get(word, word)


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


# libbpf's own error codes (enum libbpf_errno in <bpf/libbpf.h>): names for messages; text from libbpf_strerror
_LIBBPF_ERRNO_START, _LIBBPF_ERRNO_END = 4000, 4100
_LIBBPF_NAMES = dict(enumerate(("LIBELF", "FORMAT", "KVERSION", "ENDIAN", "INTERNAL", "RELOC", "LOAD", "VERIFY",
                                "PROG2BIG", "KVER", "PROGTYPE", "WRNGPID", "INVSEQ", "NLPARSE"), start=4000))


def errno_name(err: int) -> str:
    """``EPERM`` for 1, ``ENOTSUPP`` for 524, ``LIBBPF_ERRNO__FORMAT`` for 4001, ``E<n>`` when nameless.

    >>> errno_name(1), errno_name(4001)
    ('EPERM', 'LIBBPF_ERRNO__FORMAT')
    """
    if err in _LIBBPF_NAMES:
        return f"LIBBPF_ERRNO__{_LIBBPF_NAMES[err]}"
    return _errno.errorcode.get(err) or _EXTRA_NAMES.get(err) or f"E{err}"


def strerror(err: int) -> str:
    """The text of ``err``; libbpf's own codes (4000+) through ``libbpf_strerror``.

    >>> strerror(4001)
    'BPF object format invalid'
    """
    if err == ENOTSUPP:
        return "Operation not supported (kernel ENOTSUPP)"
    if _LIBBPF_ERRNO_START <= err < _LIBBPF_ERRNO_END:
        try:
            from . import lowlevel as ll  # lazy: errors.py is imported before the extension is needed

            buf = ll.ffi.new("char[]", 128)
            if ll.libbpf_strerror(err, buf, 128) == 0:
                return str(ll.ffi.string(buf).decode(errors="replace"))
        except Exception:  # interpreter shutdown: the name still says what it was
            pass
        return f"libbpf error {errno_name(err)}"
    try:
        return os.strerror(err)
    except (ValueError, OverflowError):
        return f"unknown error {err}"


def hint_for(err: int, family: str | None = None, op: str | None = None) -> str | None:
    """The most specific hint for an errno raised by operation ``op`` (default ``"link_create"``): the family's
    own (``bpflink.families``: its hints, and its capabilities for EPERM on create), then the operation's."""
    op = op or "link_create"
    if family is not None:
        own = _family_hint(family, op, err)
        if own is not None:
            return own
    if op != "link_create":
        return _OP_HINTS.get((op, err)) or _GENERIC.get(err)
    return _HINTS.get(err)


# the family registry's lookup (bpflink.families registers it when imported: whoever names a family got the name
# from it), so that this module, below every other, imports none of them
_family_hints: Callable[[str, str, int], str | None] | None = None


def register_family_hints(lookup: Callable[[str, str, int], str | None]) -> None:
    """Set ``lookup(family, operation, errno) -> hint or None``: ``bpflink.families`` does, when imported."""
    global _family_hints
    _family_hints = lookup


def _family_hint(family: str, op: str, err: int) -> str | None:
    return None if _family_hints is None else _family_hints(family, op, err)


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


def error(err: int, what: str, *, family: str | None = None, hint: str | None = None,
          op: str | None = None) -> OSError:
    """Build the exception for errno ``err`` raised by operation ``what``.

    The hint is chosen per (operation, family, errno): ``op`` names the operation, else it is read from
    ``what`` (``"map_update_elem(x)"``, ``"link XDP: update"``); link creation's hints are per family.

    >>> print(error(22, "map_delete_elem(counts)").strerror)
    map_delete_elem(counts): Invalid argument [EINVAL]; array maps have no delete: update the element to zero instead
    """
    hint = hint or hint_for(err, family, op or operation_of(what))
    message = f"{what}: {strerror(err)} [{errno_name(err)}]"
    if hint:
        message += f"; {hint}"
    return OSError(err, message)


def check(ret: int, what: str, *, family: str | None = None, hint: str | None = None, op: str | None = None) -> int:
    """Return ``ret`` if it is >= 0, else raise the ``OSError`` subclass for ``-ret``."""
    if ret >= 0:
        return ret
    raise error(-ret, what, family=family, hint=hint, op=op)


__all__ = ["ENOTSUPP", "NotSupportedError", "VerifierError", "check", "errno_name", "error", "hint_for",
           "prog_load_eperm_hint"]
