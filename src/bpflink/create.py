"""``link_create``: the facade over ``lowlevel.bpf_link_create``.

>>> # not run as a doctest: needs a loaded program `prog`, a cgroup fd and a tcx link `other`
>>> link = link_create(prog, cgroup_fd, AttachType.CGROUP_INET_EGRESS)  # doctest: +SKIP
>>> link = link_create(prog, "lo", AttachType.TCX_INGRESS, opts.Tcx(before=other))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn

from . import lowlevel as ll
from ._fd import FdLike, as_fd
from ._fdowner import link_create_fast as _c_link_create_fast
from ._fdowner import set_link_create as _set_c_link_create
from ._limits import FD_MAX
from .enums import AttachType, ProgType
from .errors import check, error
from .families import by_name, family_of
from .families._base import LinkOpts
from .link import Link
from .program import Program
from .resolve import BY_VALUE, Target
from .resolve import attach_type as _attach_type
from .resolve import target as _target

if TYPE_CHECKING:
    from .families._base import BuiltOpts

_OPTS_CTYPE = ll.ffi.typeof("struct bpf_link_create_opts *")

# The hot path, in C so that a link costs what its syscalls cost (figures: bench/README.md). Without opts,
# bpflink._fdowner.link_create_fast (include/fdowner.c)
# applies the common cases of bpflink.resolve's rules (Program or int fd, int or None target, an AttachType
# member or int from BY_VALUE), calls the C shim bpflink_link_create_noopts (bpf_link_create with NULL opts, in
# bpflink._ffi: its address is handed over here, once) without the GIL, and returns the Link, the negative
# errno, or None for anything else, which takes the Python path. lowlevel stays the exact mirror.
_set_c_link_create(int(ll.ffi.cast("uintptr_t", ll.address_of("bpflink_link_create_noopts"))), Link,
                   Program, BY_VALUE)


def _family(at: AttachType, opts: object, prog: object = None) -> str:
    """The family whose hints explain a failure: the attach type's, or the builder's where the kernel ignores the
    attach type (freplace: any attach type is accepted, so it says nothing), or freplace's for an EXT ``Program``
    (the kernel routes its link by program type: the attach type would name the wrong family)."""
    if isinstance(opts, LinkOpts):
        for name in opts.families:
            if by_name(name).any_attach_type:
                return name
    if isinstance(prog, Program) and prog.prog_type == ProgType.EXT:
        return "freplace"
    return family_of(at)


def _raise_if_unsupported(at: AttachType, err: int) -> None:
    """On EINVAL/EOPNOTSUPP/ENOTSUPP ask the (cached) probe whether this kernel lacks the attach type."""
    try:
        from .probing import not_supported_error  # lazy: only failures pay for probing
    except ImportError:  # interpreter shutdown: the kernel's own error below
        return
    exc = not_supported_error(at, err)
    if exc is not None:
        raise exc from error(err, f"link_create({at.name})", family=family_of(at))


def link_create(prog: FdLike, target: Target, attach_type: AttachType | int | str,
                opts: LinkOpts | Any | None = None) -> Link:
    """Create a BPF link, like libbpf's ``bpf_link_create`` but returning a ``Link`` or raising ``OSError``.

    ``prog``: a ``Program``, an int fd, or anything with ``fileno()``.
    ``target``: what ``bpf_link_create`` takes for this attach type (cgroup/netns fd, ifindex, perf event
    fd, map fd, target program fd, 0/None where there is none); a device name for xdp/tcx/netkit and a
    path for cgroup/netns are opened for you.
    ``opts``: the builder of this attach family from ``bpflink.opts`` (or a raw cffi
    ``struct bpf_link_create_opts *`` as an escape hatch).
    """
    if opts is None:
        link = _c_link_create_fast(prog, target, attach_type)
        if link is not None:
            if type(link) is int:
                return _failed(_attach_type(attach_type), link, prog=prog)
            return link  # type: ignore[no-any-return]
    # the common cases of bpflink.resolve's rules inline (exact ints, AttachType members, open Programs): a call
    # each costs more than the syscall (bench/); anything else goes through resolve for the checks and errors
    at = BY_VALUE.get(attach_type._value_ if type(attach_type) is AttachType else
                      attach_type if type(attach_type) is int else -1)
    if at is None:
        at = _attach_type(attach_type)
    if type(prog) is Program and prog._fd >= 0:
        prog_fd = prog._fd
    elif type(prog) is int and 0 <= prog <= FD_MAX:
        prog_fd = prog
    else:
        prog_fd = as_fd(prog, "prog")
    if type(target) is int and 0 <= target <= FD_MAX:
        target_fd, opened = target, -1
    else:
        target_fd, opened = _target(target, at)
    try:
        built: BuiltOpts | None = None
        if opts is None:
            c_opts = None
        elif isinstance(opts, LinkOpts):
            built = opts.build(at)
            c_opts = built.ptr
        elif isinstance(opts, ll.ffi.CData) and ll.ffi.typeof(opts) is _OPTS_CTYPE:
            c_opts = opts
        else:
            raise TypeError(f"opts must be a bpflink.opts builder, not {type(opts).__name__}")
        ret = ll.bpf_link_create(prog_fd, target_fd, at._value_, c_opts)  # _value_: int() of an enum is slow
    finally:
        if built is not None:
            built.close()  # what it opened or allocated was needed only during the call
        if opened >= 0:
            os.close(opened)
    if ret < 0:
        return _failed(at, ret, opts, prog)
    return Link(ret, attach_type=at)


def _failed(at: AttachType, ret: int, opts: object = None, prog: object = None) -> NoReturn:
    # the message and family only when needed: formatting them costs more than the syscall
    _raise_if_unsupported(at, -ret)
    check(ret, f"link_create({at.name})", family=_family(at, opts, prog))
    raise AssertionError("unreachable: check() raises for ret < 0")  # pragma: no cover


__all__ = ["link_create"]
