"""How each link family is tried: one function per family, giving the ``Recipe`` for one of its attach types
(None for an attach type the family function does not know how to try), and ``RECIPES`` by family name.

A recipe loads the smallest program (``asm.return_imm``) and creates a link on a harmless target: an empty
cgroup made for the purpose, the probing thread's private network namespace (its ``lo`` for XDP, the namespace
itself for sk_lookup/flow_dissector/netfilter), a sockmap nobody uses. Where a full attach is impractical it
makes a deliberately invalid request and reads the errno the way cilium/ebpf does (``proof_errno``): tcx/netkit
on ifindex 0xffffffff answer ENODEV when supported; uprobe_multi on "/" answers EBADF; perf_event on a non-perf
fd answers EBADF. Attach types whose program names a vmlinux BTF target at load are tried by
``bpflink.probing._btf``, not here.

>>> from bpflink.enums import AttachType
>>> RECIPES["tcx"](AttachType.TCX_INGRESS).proof_errno == errno.ENODEV
True
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import lowlevel as ll
from ..enums import AttachType, NfInetHook, NfProto, ProgType
from ._harness import Trial

Target = Callable[[Trial, "list[Any]"], "tuple[int, Any]"]


@dataclass(frozen=True)
class Recipe:
    """One attach type's trial: the program to load and where its link goes.

    ``target(trial, keep)`` gives ``(target fd or ifindex, link_create opts or None)``, appending to ``keep``
    the C buffers the opts point into; it raises ``Unavailable`` when the target cannot be set up.
    """

    prog_type: ProgType
    target: Target
    ret: int = 0  # the program's return value: "allow" where the hook acts on it
    expected_attach_type: bool = True  # perf_event programs are loaded without one
    proof_errno: int | None = None  # the answer to a deliberately invalid request that proves support


def _no_opts(fd_of: Callable[[Trial], int]) -> Target:
    return lambda trial, keep: (fd_of(trial), None)


_SOCK = ("INET_SOCK_CREATE", "INET4_POST_BIND", "INET6_POST_BIND", "INET_SOCK_RELEASE")
_SOCK_ADDR = ("INET4_BIND", "INET6_BIND", "INET4_CONNECT", "INET6_CONNECT", "UDP4_SENDMSG", "UDP6_SENDMSG",
              "UDP4_RECVMSG", "UDP6_RECVMSG", "INET4_GETPEERNAME", "INET6_GETPEERNAME", "INET4_GETSOCKNAME",
              "INET6_GETSOCKNAME", "UNIX_CONNECT", "UNIX_SENDMSG", "UNIX_RECVMSG", "UNIX_GETPEERNAME",
              "UNIX_GETSOCKNAME")
_CGROUP_PROGS: dict[str, ProgType] = {
    "CGROUP_INET_INGRESS": ProgType.CGROUP_SKB, "CGROUP_INET_EGRESS": ProgType.CGROUP_SKB,
    **{f"CGROUP_{n}": ProgType.CGROUP_SOCK for n in _SOCK},
    **{f"CGROUP_{n}": ProgType.CGROUP_SOCK_ADDR for n in _SOCK_ADDR},
    "CGROUP_SOCK_OPS": ProgType.SOCK_OPS, "CGROUP_DEVICE": ProgType.CGROUP_DEVICE,
    "CGROUP_SYSCTL": ProgType.CGROUP_SYSCTL, "CGROUP_GETSOCKOPT": ProgType.CGROUP_SOCKOPT,
    "CGROUP_SETSOCKOPT": ProgType.CGROUP_SOCKOPT,
}


def cgroup(at: AttachType) -> Recipe | None:
    """On the trial's empty cgroup; the program allows everything."""
    prog_type = _CGROUP_PROGS.get(at.name)
    return None if prog_type is None else Recipe(prog_type, _no_opts(Trial.cgroup_fd), ret=1)


def xdp(at: AttachType) -> Recipe | None:
    """On ``lo`` of the private network namespace."""
    return Recipe(ProgType.XDP, _no_opts(Trial.lo_ifindex)) if at == AttachType.XDP else None


_MISSING_IFINDEX = -1  # the int target_fd libbpf passes on as ifindex 0xffffffff


def tcx(at: AttachType) -> Recipe | None:
    """On ifindex 0xffffffff: ENODEV proves the kernel knows the attach type."""
    return Recipe(ProgType.SCHED_CLS, lambda trial, keep: (_MISSING_IFINDEX, None), proof_errno=errno.ENODEV)


netkit = tcx


def netns(at: AttachType) -> Recipe | None:
    """On the private network namespace itself."""
    prog_type = {"SK_LOOKUP": ProgType.SK_LOOKUP, "FLOW_DISSECTOR": ProgType.FLOW_DISSECTOR}.get(at.name)
    return None if prog_type is None else Recipe(prog_type, _no_opts(Trial.netns_fd))


def sockmap(at: AttachType) -> Recipe | None:
    """On a sockmap nobody uses."""
    prog_type = ProgType.SK_MSG if at == AttachType.SK_MSG_VERDICT else ProgType.SK_SKB
    return Recipe(prog_type, _no_opts(Trial.sockmap_fd))


def perf_event(at: AttachType) -> Recipe | None:
    """On /dev/null: EBADF (not a perf event) proves the kernel knows perf_event links."""
    return Recipe(ProgType.TRACEPOINT, _no_opts(Trial.devnull_fd), expected_attach_type=False,
                  proof_errno=errno.EBADF)


def _netfilter_target(trial: Trial, keep: list[Any]) -> tuple[int, Any]:
    trial.private_netns()  # the hook then lives in the probing thread's namespace only
    opts = ll.new_link_create_opts()
    opts.netfilter.pf, opts.netfilter.hooknum = int(NfProto.IPV4), int(NfInetHook.LOCAL_IN)
    opts.netfilter.priority = 0
    return 0, opts


def netfilter(at: AttachType) -> Recipe | None:
    """An IPv4 LOCAL_IN hook in the private network namespace; the program accepts every packet."""
    return Recipe(ProgType.NETFILTER, _netfilter_target, ret=1)


_PROBE_FUNC = b"vprintk"  # exported and traceable on every kernel with kprobe_multi


def _kprobe_multi_target(trial: Trial, keep: list[Any]) -> tuple[int, Any]:
    opts = ll.new_link_create_opts()
    name = ll.ffi.new("char[]", _PROBE_FUNC)
    syms = ll.ffi.new("const char *[]", [name])
    keep += [name, syms]
    opts.kprobe_multi.syms, opts.kprobe_multi.cnt = syms, 1
    return 0, opts


def kprobe_multi(at: AttachType) -> Recipe | None:
    """On ``vprintk`` for the moment between link create and close."""
    return Recipe(ProgType.KPROBE, _kprobe_multi_target)


def _uprobe_multi_target(trial: Trial, keep: list[Any]) -> tuple[int, Any]:
    opts = ll.new_link_create_opts()
    path = ll.ffi.new("char[]", b"/")
    offsets = ll.ffi.new("unsigned long[]", [0])
    keep += [path, offsets]
    opts.uprobe_multi.path, opts.uprobe_multi.offsets, opts.uprobe_multi.cnt = path, offsets, 1
    return 0, opts


def uprobe_multi(at: AttachType) -> Recipe | None:
    """On "/" (a directory, not an ELF file): EBADF proves the kernel knows uprobe_multi links."""
    return Recipe(ProgType.KPROBE, _uprobe_multi_target, proof_errno=errno.EBADF)


#: family name -> its recipe function
RECIPES: dict[str, Callable[[AttachType], Recipe | None]] = {
    "cgroup": cgroup, "xdp": xdp, "tcx": tcx, "netkit": netkit, "netns": netns, "sockmap": sockmap,
    "perf_event": perf_event, "netfilter": netfilter, "kprobe_multi": kprobe_multi, "uprobe_multi": uprobe_multi,
}

__all__ = ["RECIPES", "Recipe", "cgroup", "kprobe_multi", "netfilter", "netkit", "netns", "perf_event", "sockmap",
           "tcx", "uprobe_multi", "xdp"]
