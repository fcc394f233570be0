"""The iter family: iterator links (target: none), read with ``Link.read()``. Kernel >= 5.8; task filters 6.1,
cgroup 6.1. ``Iter`` opts say what the iterator walks.

They become ``union bpf_iter_link_info`` passed through ``iter_info``/``iter_info_len``. At most one group:
a map (``bpf_map_elem``, ``bpf_sk_storage_map``, ``sockmap`` iterators), one task filter (``task``,
``task_file``, ``task_vma`` iterators), or a cgroup with a walk order (``cgroup`` iterator). ``Iter()``
walks everything the iterator covers.

>>> Iter(pid=1)
Iter(map=None, tid=None, pid=1, pid_fd=None, cgroup=None, cgroup_id=None, order=None)
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Union

from .._fd import FdLike, as_fd, open_path_target
from .._limits import U32_MAX, U64_MAX, integer, u32
from .._native import constant, ffi, has
from ..enums import AttachType
from ._base import LinkOpts
from ._family import Family, TargetKind


def _order(name: str) -> int:
    return constant(f"BPF_CGROUP_ITER_{name}") if has(f"BPF_CGROUP_ITER_{name}") else -1


class CgroupIterOrder(enum.IntEnum):
    """``enum bpf_cgroup_iter_order``: how the cgroup iterator walks from its start cgroup."""

    SELF_ONLY = _order("SELF_ONLY")
    DESCENDANTS_PRE = _order("DESCENDANTS_PRE")
    DESCENDANTS_POST = _order("DESCENDANTS_POST")
    ANCESTORS_UP = _order("ANCESTORS_UP")
    CHILDREN = _order("CHILDREN")  # kernel 6.14; -1 when the compiled headers lack it


#: a cgroup: an open fd (or anything with fileno()) of its directory, or the directory's path
CgroupRef = Union[FdLike, str, "os.PathLike[str]"]


class _OpenedFd:
    """An fd opened for one link_create call; closed when the built opts are dropped."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        self.close()


@dataclass(frozen=True)
class Iter(LinkOpts):
    """Iterator parameters; give at most one of ``map``, ``tid``/``pid``/``pid_fd``, ``cgroup``/``cgroup_id``.

    ``map``: a ``Map`` or map fd. ``tid``: one thread; ``pid``: the threads of one process; ``pid_fd``: like
    ``pid`` through a pidfd (``os.pidfd_open``). ``cgroup``: fd or path of a cgroup directory, or ``cgroup_id``;
    ``order`` (``CgroupIterOrder``) is required with either.
    """

    map: FdLike | None = None
    tid: int | None = None
    pid: int | None = None
    pid_fd: FdLike | None = None
    cgroup: CgroupRef | None = None
    cgroup_id: int | None = None
    order: CgroupIterOrder | int | None = None
    # the validated values _fill writes: each __index__ runs once
    _task: tuple[str, int] | None = field(default=None, init=False, repr=False, compare=False)
    _cgroup_id: int = field(default=0, init=False, repr=False, compare=False)
    _order: int = field(default=0, init=False, repr=False, compare=False)

    families: ClassVar[frozenset[str]] = frozenset({"iter"})

    def __post_init__(self) -> None:
        groups = {
            "map": self.map is not None,
            "tid/pid/pid_fd": any(x is not None for x in (self.tid, self.pid, self.pid_fd)),
            "cgroup/cgroup_id": self.cgroup is not None or self.cgroup_id is not None,
        }
        if sum(groups.values()) > 1:
            given = " and ".join(name for name, on in groups.items() if on)
            raise ValueError(f"Iter takes one kind of parameter, got {given}")
        if sum(x is not None for x in (self.tid, self.pid, self.pid_fd)) > 1:
            raise ValueError("give at most one of tid=, pid=, pid_fd=")
        if self.cgroup is not None and self.cgroup_id is not None:
            raise ValueError("give cgroup= or cgroup_id=, not both")
        if self.map is not None:
            as_fd(self.map, "map")
        for name in ("tid", "pid"):
            value = getattr(self, name)
            if value is not None:  # 0 would mean "no filter" to the kernel
                object.__setattr__(self, "_task", (name, integer(name, value, 1, U32_MAX)))
        if self.pid_fd is not None:
            as_fd(self.pid_fd, "pid_fd")
        if self.cgroup is not None and not isinstance(self.cgroup, (str, bytes, os.PathLike)):
            as_fd(self.cgroup, "cgroup")
        if self.cgroup_id is not None:
            object.__setattr__(self, "_cgroup_id", integer("cgroup_id", self.cgroup_id, 1, U64_MAX))
        if groups["cgroup/cgroup_id"]:
            if self.order is None:
                raise ValueError("a cgroup iterator needs order= (a CgroupIterOrder)")
            order = u32("order", self.order)
            known = {int(o) for o in CgroupIterOrder if o >= 0}
            if order not in known:
                raise ValueError(f"order must be a CgroupIterOrder the compiled headers know, got {order}")
            object.__setattr__(self, "_order", order)
        elif self.order is not None:
            raise ValueError("order= belongs to cgroup=/cgroup_id=")

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        if not any(getattr(self, f) is not None for f in ("map", "tid", "pid", "pid_fd", "cgroup", "cgroup_id")):
            return  # no iter_info: the iterator walks everything
        info = ffi.new("union bpf_iter_link_info *")
        keep.append(info)
        if self.map is not None:
            info.map.map_fd = as_fd(self.map, "map")
        elif self._task is not None:
            setattr(info.task, *self._task)
        elif self.pid_fd is not None:
            info.task.pid_fd = as_fd(self.pid_fd, "pid_fd")
        else:
            info.cgroup.order = self._order
            if self.cgroup_id is not None:
                info.cgroup.cgroup_id = self._cgroup_id
            elif isinstance(self.cgroup, (str, bytes, os.PathLike)):
                opened = _OpenedFd(open_path_target(self.cgroup, "cgroup", "cgroup"))
                keep.append(opened)
                info.cgroup.cgroup_fd = opened.fd
            else:
                info.cgroup.cgroup_fd = as_fd(self.cgroup, "cgroup")
        opts.iter_info = info
        opts.iter_info_len = ffi.sizeof("union bpf_iter_link_info")


# iterator targets whose link info carries a map id, a cgroup, or a task (kernel fill_link_info callbacks)
_ITER_MAP_TARGETS = frozenset({"bpf_map_elem", "bpf_sk_storage_map", "sockmap"})
_ITER_TASK_TARGETS = frozenset({"task", "task_file", "task_vma"})


def _info_iter(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    IterLinkInfo, _refill_name = kinds.IterLinkInfo, kinds._refill_name

    full, target = _refill_name(fd, info, "iter", "target_name", "target_name_len")
    it = full.iter
    is_map, is_cgroup, is_task = target in _ITER_MAP_TARGETS, target == "cgroup", target in _ITER_TASK_TARGETS
    return IterLinkInfo(
        **base, target_name=target,
        map_id=int(it.map.map_id) if is_map else None,
        cgroup_id=int(it.cgroup.cgroup_id) if is_cgroup else None,
        order=int(it.cgroup.order) if is_cgroup else None,
        tid=int(it.task.tid) if is_task else None,
        pid=int(it.task.pid) if is_task else None,
    )


FAMILY = Family(
    name="iter",
    attach_types=(AttachType.TRACE_ITER,),
    target=TargetKind.NONE,
    feature="iter",
    caps=("CAP_PERFMON",),
    info={"ITER": _info_iter},
    link_types=("ITER",),
    opts=(Iter,),
    mechanism="BPF_LINK_CREATE on the iterator target (BTF): an iter link, read with BPF_ITER_CREATE",
)

__all__ = ["FAMILY", "CgroupIterOrder", "Iter"]
