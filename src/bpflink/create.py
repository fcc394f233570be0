"""``link_create``: the facade over ``lowlevel.bpf_link_create``.

>>> # not run as a doctest: needs a loaded program `prog`, a cgroup fd and a tcx link `other`
>>> link = link_create(prog, cgroup_fd, AttachType.CGROUP_INET_EGRESS)  # doctest: +SKIP
>>> link = link_create(prog, "lo", AttachType.TCX_INGRESS, opts.Tcx(before=other))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn, Union

from . import lowlevel as ll
from ._fd import FdLike, as_fd, open_path_target
from ._fdowner import link_create_fast as _c_link_create_fast
from ._fdowner import set_link_create as _set_c_link_create
from .enums import AttachType
from .errors import NotSupportedError, check, error
from .families import family_of
from .link import Link
from .program import Program

if TYPE_CHECKING:
    from .opts._base import BuiltOpts, LinkOpts

#: ifindex families take a device name too; cgroup and netns families take a path too
Target = Union[FdLike, str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", None]

_IFINDEX_FAMILIES = frozenset({"xdp", "tcx", "netkit"})
_PATH_FAMILIES = frozenset({"cgroup", "netns"})
_OPTS_CTYPE = ll.ffi.typeof("struct bpf_link_create_opts *")

# raw value -> member for every attach type the compiled headers define: one dict lookup with an int key
# validates an AttachType (by its _value_: hashing an enum member runs Python code) or an exact int
_BY_VALUE = {at._value_: at for at in AttachType if at._value_ >= 0}
_FD_MAX = 0x7FFFFFFF

# The hot path (bench/): in Python, checking the arguments, the cffi call and building the Link cost ~6k
# instructions, 70 times what C spends. Without opts, bpflink._fdowner.link_create_fast (include/fdowner.c)
# checks the common arguments exactly as the code below does (Program or int fd, int or None target, an
# AttachType member or int from _BY_VALUE), calls the C shim bpflink_link_create_noopts (bpf_link_create with
# NULL opts, in bpflink._ffi: its address is handed over here, once) without the GIL, and returns the Link,
# the negative errno, or None for anything else, which takes the Python path. lowlevel stays the exact mirror.
_set_c_link_create(int(ll.ffi.cast("uintptr_t", ll.address_of("bpflink_link_create_noopts"))), Link,
                   Program, _BY_VALUE)


def _attach_type(value: object) -> AttachType:
    if isinstance(value, AttachType):
        # the checks below, read from the member directly: .available and .name are Python-level properties
        # and hashing an enum member calls Python too, each costing more than the syscall (bench/)
        if value._value_ >= 0 and not value._name_.startswith("UNKNOWN_"):
            return value
        at = value
    elif isinstance(value, str):
        at = AttachType.parse(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            at = AttachType(value)
        except ValueError:
            raise ValueError(f"{value} is not an attach type") from None
    else:
        raise TypeError(f"attach_type must be an AttachType, not {type(value).__name__}")
    if not at.available:
        raise NotSupportedError(at.name, "the libbpf headers bpflink was compiled against do not define "
                                f"{at.cname}")
    if at.name.startswith("UNKNOWN_"):
        raise ValueError(f"{int(at)} is not an attach type the compiled headers know")
    return at


def _ifindex(name: str) -> int:
    import socket  # lazy: ~1.5 ms of import time, needed only for device names

    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise ValueError(f"no network device named {name!r}") from None


def _raise_if_unsupported(at: AttachType, err: int) -> None:
    """On EINVAL/EOPNOTSUPP/ENOTSUPP ask the (cached) probe whether this kernel lacks the attach type."""
    try:
        from .probe import not_supported_error  # lazy: only failures pay for probing
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
                return _failed(_attach_type(attach_type), link)
            return link  # type: ignore[no-any-return]
    # fast paths first (exact ints, AttachType members, fd owners); anything else takes the full checks
    at = _BY_VALUE.get(attach_type._value_ if type(attach_type) is AttachType else
                       attach_type if type(attach_type) is int else -1)
    if at is None:
        at = _attach_type(attach_type)  # names, int subclasses, unknown or unavailable values: the errors
    if type(prog) is Program and prog._fd >= 0:  # what as_fd does for an open Program, without the call
        prog_fd = prog._fd
    elif type(prog) is int and 0 <= prog <= _FD_MAX:
        prog_fd = prog
    else:
        prog_fd = as_fd(prog, "prog")
    opened = -1
    if target is None:
        target_fd = 0
    elif type(target) is int and 0 <= target <= _FD_MAX:  # the hot path: skip the os.PathLike ABC check
        target_fd = target
    elif isinstance(target, (str, bytes, os.PathLike)):
        family = family_of(at)
        if family in _IFINDEX_FAMILIES and isinstance(target, str) and "/" not in target:
            target_fd = _ifindex(target)
        elif family in _PATH_FAMILIES:
            opened = target_fd = open_path_target(target, family, "target")
        else:
            raise TypeError(f"target for {at.name} must be an int (fd or ifindex), not a path or name")
    else:
        target_fd = as_fd(target, "target")
    from .opts._base import LinkOpts  # here, not at import: bpflink.opts imports every family (bench/: import)

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
        return _failed(at, ret)
    return Link(ret, attach_type=at)


def _failed(at: AttachType, ret: int) -> NoReturn:
    # the message and family only when needed: formatting them costs more than the syscall
    _raise_if_unsupported(at, -ret)
    check(ret, f"link_create({at.name})", family=family_of(at))
    raise AssertionError("unreachable: check() raises for ret < 0")  # pragma: no cover


__all__ = ["link_create"]
