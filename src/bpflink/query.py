"""``query``: what is attached to a hook, in execution order, with the hook's revision.

A thin, typed layer over ``bpf_prog_query_opts`` (two calls: the count first, then the arrays). The revision
is what ``opts.Tcx``/``opts.Netkit``/``opts.Cgroup(expected_revision=)`` compare against: an empty tcx/netkit
hook has revision 1 and every attach or detach adds one (a tcx hook that becomes empty again is back at 1;
a cgroup keeps counting).

Kernels before 6.6 know neither the revision nor the link-id arrays of ``BPF_PROG_QUERY`` and refuse a
query that passes them (EINVAL: its bytes past ``prog_attach_flags`` must be zero); found by trial, such a
kernel's answers carry ``revision=None`` and ``link_id=None``: not reported, rather than a made-up 0.

>>> # not run as a doctest: needs a device eth0 with tcx links (tests/test_xdp_tcx.py)
>>> q = bpflink.query("eth0", AttachType.TCX_INGRESS)  # doctest: +SKIP
>>> [e.link_id for e in q.entries], q.revision  # doctest: +SKIP
([12, 11], 3)
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import Any

from . import kernel, resolve
from . import lowlevel as ll
from .enums import AttachType
from .errors import check, error
from .families import family_of
from .resolve import Target

# a hook can change between the counting call and the filling one; retry that many times
_RETRIES = 8


@dataclass(frozen=True)
class HookEntry:
    """One program on a hook. ``link_id`` is 0 when it was attached without a link or the kernel does not fill
    link ids for this hook (cgroup hooks: 0 even for programs attached through links, measured up to 6.18 by
    tests/test_cgroup_order.py; tcx/netkit fill them), None when the kernel's query has no link ids at all
    (< 6.6); ``flags`` are the flags it was attached with."""

    prog_id: int
    link_id: int | None
    flags: int


@dataclass(frozen=True)
class HookQuery:
    """A hook's ``revision`` (0 where the kernel keeps none for this hook, None where its query has no
    revision field: < 6.6), its ``attach_flags`` and its ``entries`` in execution order."""

    revision: int | None
    attach_flags: int
    entries: tuple[HookEntry, ...]

    @property
    def prog_ids(self) -> tuple[int, ...]:
        return tuple(e.prog_id for e in self.entries)

    @property
    def link_ids(self) -> tuple[int | None, ...]:
        return tuple(e.link_id for e in self.entries)


# what bpflink.kernel remembers once a query told: does this kernel's BPF_PROG_QUERY know link_ids,
# link_attach_flags and revision (6.6+)? None until then
_MPROG_FIELDS = "prog_query_mprog_fields"


def _call(tgt: int, at: AttachType, opts: Any, link_ids: Any) -> int:
    """One ``bpf_prog_query_opts``, with ``link_ids`` unless the kernel is known to predate them. The first
    EINVAL with them is asked again without: success then means the kernel predates them (it is remembered)."""
    mprog_fields = kernel.recall(_MPROG_FIELDS)
    if mprog_fields is False:
        ret = ll.bpf_prog_query_opts(tgt, int(at), opts)
    else:
        opts.link_ids = link_ids
        ret = ll.bpf_prog_query_opts(tgt, int(at), opts)
        if ret >= 0:
            mprog_fields = True
        elif ret == -errno.EINVAL and mprog_fields is None:
            opts.link_ids = ll.ffi.NULL
            ret = ll.bpf_prog_query_opts(tgt, int(at), opts)
            if ret >= 0:  # else EINVAL for another reason: the newer fields are not to blame
                mprog_fields = False
    if ret == -errno.EINVAL and mprog_fields is not True and opts.prog_attach_flags != ll.ffi.NULL:
        # before 6.0 the query has no per-program attach flags either (prog_attach_flags must be zero there):
        # asked again without, the entries' flags stay 0 (such kernels keep one attach_flags per hook)
        opts.prog_attach_flags = ll.ffi.NULL
        opts.link_ids = ll.ffi.NULL
        ret = ll.bpf_prog_query_opts(tgt, int(at), opts)
        if ret >= 0:
            mprog_fields = False
    if mprog_fields is not None:
        kernel.remember(_MPROG_FIELDS, mprog_fields)
    return ret


def _failed(ret: int, at: AttachType, what: str, family: str) -> None:
    """Raise for a failed query; EINVAL from a kernel the probe finds without this attach type (tcx on 6.1)
    is a ``NotSupportedError``."""
    if ret == -errno.EINVAL:
        try:
            from .probing import not_supported_error  # lazy: only failures pay for probing
        except ImportError:  # interpreter shutdown: the kernel's own error below
            not_supported_error = None  # type: ignore[assignment]
        exc = None if not_supported_error is None else not_supported_error(at, errno.EINVAL)
        if exc is not None:
            raise exc from error(errno.EINVAL, what, family=family)
    check(ret, what, family=family)


def query(target: Target, attach_type: AttachType | int | str) -> HookQuery:
    """The programs attached at ``target`` for ``attach_type``, in the order the kernel runs them.

    ``target``: an ifindex or device name (tcx, netkit), a cgroup directory path or fd (cgroup), a netns
    path or fd (sk_lookup, flow_dissector), or an fd (e.g. a sockmap). Errors are ``OSError`` with a hint;
    an attach type this kernel lacks raises ``NotSupportedError``.
    """
    at = resolve.attach_type(attach_type)
    family = family_of(at)
    tgt, opened = resolve.target(target, at, required=True, op="query")
    what = f"prog_query({at.name})"
    try:
        opts = ll.new_prog_query_opts()
        # the counting call passes a link_ids buffer too, so an old kernel is found before any answer is built
        ret = _call(tgt, at, opts, ll.ffi.new("__u32[]", 1))
        if ret < 0:
            _failed(ret, at, what, family)
        for _ in range(_RETRIES):
            count = int(opts.count)
            mprog_fields = kernel.recall(_MPROG_FIELDS)
            revision = int(opts.revision) if mprog_fields else None
            if count == 0:
                return HookQuery(revision, int(opts.attach_flags), ())
            prog_ids = ll.ffi.new("__u32[]", count)
            link_ids = ll.ffi.new("__u32[]", count)
            prog_flags = ll.ffi.new("__u32[]", count)
            opts = ll.new_prog_query_opts()
            opts.count = count
            opts.prog_ids, opts.prog_attach_flags = prog_ids, prog_flags
            ret = _call(tgt, at, opts, link_ids)
            if ret == -errno.ENOSPC:  # it grew in between; opts.count now holds the new total
                continue
            if ret < 0:
                _failed(ret, at, what, family)
            n = min(int(opts.count), count)  # it may also have shrunk
            mprog_fields = kernel.recall(_MPROG_FIELDS)
            links = [int(link_ids[i]) for i in range(n)] if mprog_fields else [None] * n
            entries = tuple(HookEntry(int(prog_ids[i]), links[i], int(prog_flags[i])) for i in range(n))
            return HookQuery(int(opts.revision) if mprog_fields else None, int(opts.attach_flags), entries)
        raise error(errno.EAGAIN, f"{what}: the hook changed during each of {_RETRIES} reads", op="prog_query")
    finally:
        if opened >= 0:
            os.close(opened)


__all__ = ["HookEntry", "HookQuery", "query"]

from ._callable import make_callable  # noqa: E402  (bpflink.query(...) calls query(); see _callable)

make_callable(__name__)
