"""Which attach types work on the running kernel, found by trial and cached per process.

Each probe loads the smallest program (``asm.return_imm``) and creates a link on a harmless target: an empty
cgroup made for the purpose, a network namespace private to the probing thread (its ``lo`` for XDP, the
namespace itself for sk_lookup/flow_dissector/netfilter), a sockmap nobody uses. Where a full attach is
impractical it makes a deliberately invalid request and reads the errno the way cilium/ebpf does (tcx/netkit
on ifindex 0xffffffff answer ENODEV when supported; uprobe_multi on "/" answers EBADF; perf_event on a
non-perf fd answers EBADF). Attach types whose program names a vmlinux BTF target at load (iter, fentry/fexit,
fmod_ret, lsm, lsm_cgroup, tp_btf, struct_ops) are tried by ``_probe_btf``. Every link and program is closed
before the probe returns.

>>> import bpflink
>>> from bpflink import AttachType
>>> result = probe_attach_type(AttachType.CGROUP_INET_EGRESS)  # a probe, cached for the process
>>> result.family, isinstance(result.supported, bool)
('cgroup', True)
>>> # not run as a doctest: the answer is this kernel's (this one lacks CONFIG_FPROBE)
>>> probe_attach_type(AttachType.TRACE_KPROBE_MULTI).reason  # doctest: +SKIP
'EOPNOTSUPP: kernel config lacks CONFIG_FPROBE'
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as _errno
import os
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import _probe_btf, asm
from . import lowlevel as ll
from .enums import AttachType, MapType, NfInetHook, NfProto, ProgType
from .errors import ENOTSUPP, errno_name, hint_for, strerror
from .families import family_of
from .features import FEATURES, explain


@dataclass(frozen=True)
class ProbeResult:
    """The verdict for one attach type: ``errno`` is what the kernel answered (None when it accepted)."""

    attach_type: AttachType
    family: str
    supported: bool
    errno: int | None
    reason: str

    @property
    def feature(self) -> str:
        """The ``features.FEATURES`` name this attach type needs (``kprobe_session`` is not ``kprobe_multi``)."""
        return feature_of(self.attach_type)

    def to_dict(self) -> dict[str, Any]:
        return {"attach_type": self.attach_type.name.lower(), "family": self.family, "supported": self.supported,
                "errno": None if self.errno is None else errno_name(self.errno), "reason": self.reason}


def feature_of(attach_type: AttachType) -> str:
    """The feature (``features.FEATURES`` key) an attach type needs."""
    if attach_type == AttachType.TRACE_KPROBE_SESSION:
        return "kprobe_session"
    if attach_type == AttachType.TRACE_UPROBE_SESSION:
        return "uprobe_session"
    if attach_type.name.startswith("CGROUP_UNIX_"):  # AF_UNIX sock_addr hooks came later than cgroup links
        return "cgroup_unix"
    return _probe_btf.FEATURE.get(attach_type.name) or family_of(attach_type)


# --- what to load and where to attach -----------------------------------------------------------------------

_SOCK = ("INET_SOCK_CREATE", "INET4_POST_BIND", "INET6_POST_BIND", "INET_SOCK_RELEASE")
_SOCK_ADDR = ("INET4_BIND", "INET6_BIND", "INET4_CONNECT", "INET6_CONNECT", "UDP4_SENDMSG", "UDP6_SENDMSG",
              "UDP4_RECVMSG", "UDP6_RECVMSG", "INET4_GETPEERNAME", "INET6_GETPEERNAME", "INET4_GETSOCKNAME",
              "INET6_GETSOCKNAME", "UNIX_CONNECT", "UNIX_SENDMSG", "UNIX_RECVMSG", "UNIX_GETPEERNAME",
              "UNIX_GETSOCKNAME")
_PROG: dict[str, ProgType] = {
    "CGROUP_INET_INGRESS": ProgType.CGROUP_SKB, "CGROUP_INET_EGRESS": ProgType.CGROUP_SKB,
    **{f"CGROUP_{n}": ProgType.CGROUP_SOCK for n in _SOCK},
    **{f"CGROUP_{n}": ProgType.CGROUP_SOCK_ADDR for n in _SOCK_ADDR},
    "CGROUP_SOCK_OPS": ProgType.SOCK_OPS, "CGROUP_DEVICE": ProgType.CGROUP_DEVICE,
    "CGROUP_SYSCTL": ProgType.CGROUP_SYSCTL, "CGROUP_GETSOCKOPT": ProgType.CGROUP_SOCKOPT,
    "CGROUP_SETSOCKOPT": ProgType.CGROUP_SOCKOPT,
    "XDP": ProgType.XDP, "TCX_INGRESS": ProgType.SCHED_CLS, "TCX_EGRESS": ProgType.SCHED_CLS,
    "NETKIT_PRIMARY": ProgType.SCHED_CLS, "NETKIT_PEER": ProgType.SCHED_CLS,
    "NETFILTER": ProgType.NETFILTER, "SK_LOOKUP": ProgType.SK_LOOKUP, "FLOW_DISSECTOR": ProgType.FLOW_DISSECTOR,
    "PERF_EVENT": ProgType.TRACEPOINT,
    "TRACE_KPROBE_MULTI": ProgType.KPROBE, "TRACE_KPROBE_SESSION": ProgType.KPROBE,
    "TRACE_UPROBE_MULTI": ProgType.KPROBE, "TRACE_UPROBE_SESSION": ProgType.KPROBE,
    "SK_MSG_VERDICT": ProgType.SK_MSG, "SK_SKB_STREAM_PARSER": ProgType.SK_SKB,
    "SK_SKB_STREAM_VERDICT": ProgType.SK_SKB, "SK_SKB_VERDICT": ProgType.SK_SKB,
}
# the kernel's answer that proves support when the request was deliberately invalid
_OK_ERRNO = {"tcx": _errno.ENODEV, "netkit": _errno.ENODEV, "uprobe_multi": _errno.EBADF,
             "perf_event": _errno.EBADF}
_MISSING_IFINDEX = -1  # the int target_fd libbpf passes on as ifindex 0xffffffff
#: the name of every probe program (how tests check none is left behind)
PROBE_PROG_NAME = _probe_btf.PROBE_PROG_NAME
# attach types that name no link at all: only an expected_attach_type for other attach paths
_NO_LINK = {
    "LIRC_MODE2": "LIRC_MODE2 programs attach to a lirc device with BPF_PROG_ATTACH only; the kernel makes no "
                  "link of this attach type",
    **{name: f"{name} is the expected_attach_type of XDP programs stored in a {name[4:].lower()} entry; the "
             "kernel makes no link of this attach type" for name in ("XDP_DEVMAP", "XDP_CPUMAP")},
    **{name: f"{name} is the expected_attach_type of SK_REUSEPORT programs attached with "
             "setsockopt(SO_ATTACH_REUSEPORT_EBPF); the kernel makes no link of this attach type"
       for name in ("SK_REUSEPORT_SELECT", "SK_REUSEPORT_SELECT_OR_MIGRATE")},
}
_PROBE_FUNC = b"vprintk"  # exported and traceable on every kernel with kprobe_multi


def probeable() -> tuple[AttachType, ...]:
    """The attach types ``probe()`` can try on this build (those the compiled headers know)."""
    return tuple(at for at in AttachType if _has_probe(at) and at.available)


def _has_probe(at: AttachType) -> bool:
    return at.name in _PROG or at.name in _probe_btf.NAMES


class _Unavailable(Exception):
    """A probe target could not be set up (no cgroup v2 mount, no private netns): not the kernel's verdict."""


class _Trial:
    """Targets shared by the probes of one ``probe()`` call, made on first use, removed by ``close()``.

    Runs in a thread of its own whose network namespace is private (``unshare(CLONE_NEWNET)`` affects the
    calling thread only), so XDP, netfilter, sk_lookup and flow dissector links never touch a real device.
    """

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._cgroup: str | None = None
        self._cgroup_fd = -1
        self._netns_error: str | None = None
        self._netns = False
        self._netns_fd = -1

    def cgroup_fd(self) -> int:
        if self._cgroup is None:
            root = _cgroup2_mount()
            if root is None:
                raise _Unavailable("no cgroup v2 file system is mounted")
            path = os.path.join(root, f"bpflink-probe-{os.getpid()}-{threading.get_ident()}")
            os.mkdir(path)
            self._cgroup = path
            self._cgroup_fd = self._keep(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        return self._cgroup_fd

    def private_netns(self) -> None:
        if not self._netns and self._netns_error is None:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
                err = ctypes.get_errno()
                self._netns_error = f"cannot create a private network namespace to probe in ({errno_name(err)})"
            else:
                self._netns = True
        if self._netns_error:
            raise _Unavailable(self._netns_error)

    def netns_fd(self) -> int:
        self.private_netns()
        if self._netns_fd < 0:
            self._netns_fd = self._keep(os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        return self._netns_fd

    def lo_ifindex(self) -> int:
        self.private_netns()
        return socket.if_nametoindex("lo")

    def sockmap_fd(self) -> int:
        fd = ll.bpf_map_create(int(MapType.SOCKMAP), None, 4, 4, 1, None)
        if fd < 0:
            raise _Unavailable(f"cannot create a sockmap to probe with ({errno_name(-fd)})")
        return self._keep(fd)

    def devnull_fd(self) -> int:
        return self._keep(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))

    def _keep(self, fd: int) -> int:
        self._fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self._cgroup is not None:
            with contextlib.suppress(OSError):  # a process moved in meanwhile: leave it to its owner
                os.rmdir(self._cgroup)
            self._cgroup = None


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return parts[1]
    return None


_lockdown = _probe_btf.lockdown_mode


def _target_and_opts(at: AttachType, trial: _Trial, keep: list[Any]) -> tuple[int, Any]:
    """(target, opts or None) for a link_create that attaches harmlessly or fails in a telling way."""
    family = family_of(at)
    opts = None
    if family == "cgroup":
        return trial.cgroup_fd(), None
    if family == "xdp":
        return trial.lo_ifindex(), None
    if family in ("tcx", "netkit"):
        return _MISSING_IFINDEX, None
    if family == "netns":
        return trial.netns_fd(), None
    if family == "sockmap":
        return trial.sockmap_fd(), None
    if family == "perf_event":
        return trial.devnull_fd(), None
    opts = ll.new_link_create_opts()
    if family == "netfilter":
        trial.private_netns()  # the hook then lives in the probing thread's namespace only
        opts.netfilter.pf, opts.netfilter.hooknum = int(NfProto.IPV4), int(NfInetHook.LOCAL_IN)
        opts.netfilter.priority = 0
    elif family == "kprobe_multi":
        name = ll.ffi.new("char[]", _PROBE_FUNC)
        syms = ll.ffi.new("const char *[]", [name])
        keep += [name, syms]
        opts.kprobe_multi.syms, opts.kprobe_multi.cnt = syms, 1
    elif family == "uprobe_multi":
        path = ll.ffi.new("char[]", b"/")
        offsets = ll.ffi.new("unsigned long[]", [0])
        keep += [path, offsets]
        opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = path, offsets, 1
    return 0, opts


def _verdict(at: AttachType, err: int | None, *, load_failed: bool = False) -> ProbeResult:
    family = family_of(at)
    feature = feature_of(at)
    if err is None:
        return ProbeResult(at, family, True, None, "a link was created and released")
    if not load_failed and err == _OK_ERRNO.get(family):
        return ProbeResult(at, family, True, err,
                           f"the kernel knows the attach type (answered {errno_name(err)} to a probe request)")
    why = explain(feature) if feature in FEATURES else ""
    if err == _errno.EPERM:
        mode = _lockdown()  # a fact worth showing, not proof that lockdown is the cause
        why = (why or hint_for(err) or "") + (f" (kernel lockdown is '{mode}')" if mode else "")
    what = "program load refused" if load_failed else "link_create refused"
    detail = why or hint_for(err, family) or strerror(err)
    return ProbeResult(at, family, False, err, f"{errno_name(err)}: {what}: {detail}")


def _probe_one(at: AttachType, trial: _Trial) -> ProbeResult:
    if at.name in _probe_btf.NAMES:  # the program names a BTF target at load: probed in _probe_btf
        try:
            return ProbeResult(at, family_of(at), *_probe_btf.run(at, trial.cgroup_fd))
        except (_Unavailable, OSError) as exc:
            why = exc if isinstance(exc, _Unavailable) else f"{type(exc).__name__}: {exc}"
            return ProbeResult(at, family_of(at), False, None, f"not probed: {why}")
    try:
        return _probe_link(at, trial)
    except (_Unavailable, OSError) as exc:  # a target the probe could not set up: no verdict on the kernel
        why = exc if isinstance(exc, _Unavailable) else f"{type(exc).__name__}: {exc}"
        return ProbeResult(at, family_of(at), False, None, f"not probed: {why}")


def _probe_link(at: AttachType, trial: _Trial) -> ProbeResult:
    prog_type = _PROG[at.name]
    expected = None if at == AttachType.PERF_EVENT else at
    opts_load = ll.new_prog_load_opts()
    if expected is not None:
        opts_load.expected_attach_type = int(expected)
    code = asm.return_imm(1 if family_of(at) in ("cgroup", "netfilter") else 0)
    insns = ll.ffi.new("char[]", code)
    prog = ll.bpf_prog_load(int(prog_type), PROBE_PROG_NAME, b"GPL", ll.ffi.cast("struct bpf_insn *", insns),
                            len(code) // 8, opts_load)
    if prog < 0:
        return _verdict(at, -prog, load_failed=True)
    keep: list[Any] = []
    try:
        try:
            target, opts = _target_and_opts(at, trial, keep)
        except _Unavailable as exc:
            return ProbeResult(at, family_of(at), False, None, f"not probed: {exc}")
        link = ll.bpf_link_create(prog, target, int(at), opts)
        if link >= 0:
            os.close(link)
            return _verdict(at, None)
        return _verdict(at, -link)
    finally:
        os.close(prog)


# --- cache ----------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[AttachType, ProbeResult] = {}
_cache_pid = os.getpid()


def _reset_after_fork() -> None:
    """In a forked child: a fresh lock (a thread of the parent may have held it at fork: the child would block
    on it forever) and no cached verdicts (the child may run under other privileges or namespaces)."""
    global _lock, _cache_pid
    _lock = threading.Lock()
    _cache.clear()
    _cache_pid = os.getpid()


os.register_at_fork(after_in_child=_reset_after_fork)


def _run_in_private_thread(fn: Callable[[_Trial], None]) -> None:
    errors: list[BaseException] = []

    def body() -> None:
        trial = _Trial()
        try:
            fn(trial)
        except BaseException as exc:  # pragma: no cover - re-raised in the caller
            errors.append(exc)
        finally:
            trial.close()

    # the private network namespace dies with this thread, never touching the caller's
    thread = threading.Thread(target=body, name="bpflink-probe", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def _attach_type(value: AttachType | str | int) -> AttachType:
    at = AttachType.parse(value) if isinstance(value, str) else AttachType(value)
    if not _has_probe(at):
        why = _NO_LINK.get(at.name, "bpflink does not know how to try it")
        raise ValueError(f"bpflink has no probe for {at.name}: {why}")
    return at


def probe(attach_types: Iterable[AttachType | str | int] | None = None) -> tuple[ProbeResult, ...]:
    """Probe ``attach_types`` (default: every probeable one) on the running kernel; results are cached.

    >>> # not run as a doctest: the answer is this kernel's
    >>> [r.attach_type.name for r in bpflink.probe() if not r.supported]  # doctest: +SKIP
    ['NETKIT_PRIMARY', 'NETKIT_PEER', 'TRACE_KPROBE_MULTI', 'TRACE_KPROBE_SESSION']
    """
    global _cache_pid
    wanted = probeable() if attach_types is None else tuple(_attach_type(a) for a in attach_types)
    with _lock:
        if _cache_pid != os.getpid():  # a forked child may run under other privileges: probe again
            _cache.clear()
            _cache_pid = os.getpid()
        missing = [at for at in wanted if at not in _cache]
        unavailable = [at for at in missing if not at.available]
        for at in unavailable:
            _cache[at] = ProbeResult(at, family_of(at), False, None,
                                     f"the headers bpflink was compiled against do not define {at.cname}")
        todo = [at for at in missing if at.available]
        if todo:
            def run(trial: _Trial) -> None:
                for at in todo:
                    _cache[at] = _probe_one(at, trial)

            _run_in_private_thread(run)
        return tuple(_cache[at] for at in wanted)


def probe_attach_type(attach_type: AttachType | str | int) -> ProbeResult:
    """The (cached) probe result of one attach type."""
    return probe([attach_type])[0]


def supports(attach_type: AttachType | str | int) -> bool:
    """Whether links of ``attach_type`` can be created on this kernel, by trial (cached).

    >>> # not run as a doctest: the answer is this kernel's
    >>> bpflink.supports(AttachType.TCX_INGRESS)  # doctest: +SKIP
    True
    """
    return probe_attach_type(attach_type).supported


def not_supported_error(attach_type: AttachType, err: int) -> OSError | None:
    """For ``link_create``'s error path: a ``NotSupportedError`` when ``err`` (EINVAL, EOPNOTSUPP, ENOTSUPP)
    comes from a kernel that the probe says lacks this attach type; None when it is the caller's mistake."""
    from .errors import NotSupportedError

    if err not in (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP) or not _has_probe(attach_type):
        return None
    try:
        result = probe_attach_type(attach_type)
    except Exception:  # the probe's own failure must never replace the caller's error
        return None
    # only a probe that met the same kind of refusal proves a missing feature (an EPERM there is a policy)
    if result.supported or result.errno not in (_errno.EINVAL, _errno.EOPNOTSUPP, ENOTSUPP):
        return None
    feature = result.feature
    if attach_type.name == "LSM_MAC" and not explain(feature):
        # lsm programs exist (5.7, attached by RAW_TRACEPOINT_OPEN): link_create of one came with the tracing links
        feature = "tracing_cookie"
    min_kernel = FEATURES[feature].min_kernel_str if feature in FEATURES else None
    return NotSupportedError(feature, result.reason, min_kernel=min_kernel)


__all__ = ["ProbeResult", "feature_of", "not_supported_error", "probe", "probe_attach_type", "probeable",
           "supports"]
