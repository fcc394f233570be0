"""One set of rules for the arguments every link operation takes: attach types, program fds, targets.

``link_create``, ``query`` (and the probe and attach layers) resolve their arguments here, so a value means the
same everywhere and is refused with the same message before any syscall.

The target contract:

* ``None`` and ``0`` both mean "no target". ``link_create`` passes 0 on (families whose attach point is in the
  program or the opts take nothing; for the others the kernel's answer says what is missing); an operation that
  must name a hook (``query``) refuses ``None`` with a ``TypeError`` and ``0`` with a ``ValueError``, both
  saying what the family takes.
* an ``int`` is in ``0..FD_MAX``: an fd, or an ifindex for the families that take one (``bool`` is refused).
* anything with ``fileno()`` (``Link``, ``Program``, ``Map``, a file) is its fd.
* a ``str`` without ``/`` is a network device name for the ifindex families (xdp, tcx, netkit).
* a path (``str``, ``bytes``, ``os.PathLike``) is opened for the call for the families that take one (cgroup,
  netns); the caller closes the fd returned as ``opened``.

>>> attach_type("tcx_ingress") is AttachType.TCX_INGRESS
True
>>> target(None, AttachType.TRACE_FENTRY)
(0, -1)
>>> target(None, AttachType.TCX_INGRESS, required=True, op="query")
Traceback (most recent call last):
...
TypeError: query(TCX_INGRESS) needs a target: an ifindex or device name
"""

from __future__ import annotations

import os
from typing import Union

from ._fd import FdLike, as_fd, open_path_target
from ._limits import FD_MAX, S32_MAX, S32_MIN, U32_MAX, U64_MAX, integer, s32, u32, u64
from .enums import AttachType
from .errors import NotSupportedError

#: what ``target`` may be: see the module's contract
Target = Union[FdLike, str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", None]

# raw value -> member for every attach type the compiled headers define: one dict lookup with an int key
# validates an AttachType (by its _value_: hashing an enum member runs Python code) or an exact int
BY_VALUE = {at._value_: at for at in AttachType if at._value_ >= 0}

# what a required target is, said in the TypeError, per target kind
_WANTED = {"ifindex": "an ifindex or device name", "cgroup": "an fd or path of a cgroup v2 directory",
           "netns": "an fd or path of a network namespace", "perf_event": "a perf event fd",
           "map": "a map fd (or Map)", "prog": "a program fd (or Program)"}


def attach_type(value: object) -> AttachType:
    """An ``AttachType`` from a member, an int or a name (``"tcx_ingress"``, ``"BPF_TCX_INGRESS"``).

    ``TypeError`` for other types, ``ValueError`` for unknown values, ``NotSupportedError`` for a member the
    compiled headers lack.
    """
    if isinstance(value, AttachType):
        # read from the member directly: .available and .name are Python-level properties and hashing an enum
        # member calls Python too, each costing more than the syscall (bench/)
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


def prog_fd(prog: object) -> int:
    """The fd of a program argument: a ``Program``, an int fd in ``0..FD_MAX`` or anything with ``fileno()``."""
    return as_fd(prog, "prog")


def ifindex(name: str) -> int:
    """The ifindex of network device ``name``; ``ValueError`` naming it when there is none."""
    import socket  # lazy: ~1.5 ms of import time, needed only for device names

    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise ValueError(f"no network device named {name!r}") from None


def target(value: Target, at: AttachType, *, required: bool = False, op: str = "link_create") -> tuple[int, int]:
    """``(target for the kernel, fd opened here or -1)`` for attach type ``at`` under the module's contract.

    ``required``: refuse ``None``/0 (the operation must name a hook). ``op`` names the operation in messages.
    """
    if value is None or (type(value) is int and value == 0):
        if not required:
            return 0, -1
        if value is None:
            raise TypeError(f"{op}({at.name}) needs a target: {_wanted(at)}")
        raise ValueError(f"{op}({at.name}) needs a target: {_wanted(at)}, not 0")
    if isinstance(value, (str, bytes, os.PathLike)):
        from .families import record_of  # lazy: the registry imports every family module

        fam = record_of(at)
        if fam.target.takes_device and isinstance(value, str) and "/" not in value:
            return ifindex(value), -1
        if fam.target.takes_path:
            fd = open_path_target(value, fam.target.value, "target")
            return fd, fd
        raise TypeError(f"target for {op}({at.name}) must be an int (fd or ifindex), not a path or name")
    return as_fd(value, "target"), -1


def _wanted(at: AttachType) -> str:
    from .families import record_of

    return _WANTED.get(record_of(at).target.value, "an fd")


__all__ = ["FD_MAX", "S32_MAX", "S32_MIN", "U32_MAX", "U64_MAX", "Target", "attach_type", "ifindex",
           "integer", "prog_fd", "s32", "target", "u32", "u64"]
