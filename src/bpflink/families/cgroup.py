"""The cgroup family: ``BPF_CGROUP_*`` and ``BPF_LSM_CGROUP`` links on a cgroup v2 directory (kernel >= 5.7).

``Cgroup()`` appends the link (plain multi-attach); ``before``/``after``/``anchor``/``expected_revision``
order the cgroup's programs (libbpf >= 1.6, kernel >= 6.17).

>>> Cgroup()
Cgroup(before=None, after=None, anchor=None, expected_revision=None)
>>> FAMILY.target, FAMILY.min_kernel
(<TargetKind.CGROUP: 'cgroup'>, (5, 7))
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar

from .. import kernel
from .._native import has, require
from ..enums import AttachType
from ..errors import NotSupportedError
from ._family import Family, TargetKind
from ._mprog import MPROG_HINTS, Mprog

_HAS_CGROUP_MEMBER = has("struct bpf_link_create_opts.cgroup")


@dataclass(frozen=True)
class Cgroup(Mprog):
    """Opts for ``BPF_CGROUP_*`` links (target: fd of a cgroup v2 directory).

    With no arguments the link is appended (plain multi-attach, kernel >= 5.7). ``before``/``after``/
    ``anchor``/``expected_revision`` order the cgroup's programs (libbpf >= 1.6, kernel >= 6.17).
    """

    families: ClassVar[frozenset[str]] = frozenset({"cgroup"})
    member: ClassVar[str] = "cgroup"

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        if not self.ordered:
            return
        if not _HAS_CGROUP_MEMBER:
            require("struct bpf_link_create_opts.cgroup", "cgroup_mprog", min_kernel="6.17")
        if not _kernel_orders_cgroups():
            raise NotSupportedError(
                "cgroup_mprog",
                "cgroup link ordering: this kernel keeps no revision for cgroup hooks (query reports 0), "
                "so it would silently ignore before/after/expected_revision",
                min_kernel="6.17",
            )
        super()._fill(opts, attach_type, keep)


def _kernel_orders_cgroups() -> bool:
    """Probed once (``bpflink.kernel``): kernels with cgroup multi-prog ordering (6.17+) report a revision >= 1
    for every cgroup hook; older kernels leave it 0 and ignore the ordering fields instead of refusing them."""
    return kernel.trial("cgroup_revision", _cgroup_revision_trial)


def _cgroup_revision_trial() -> bool:
    from ..query import query

    try:
        root = kernel.cgroup2_mount()
        if root is None:
            return True  # nothing to ask: let the kernel answer
        revision = query(root, AttachType.CGROUP_INET_EGRESS).revision
        return revision is not None and revision > 0  # None: the query has no revision (< 6.6)
    except OSError as exc:  # EINVAL: the kernel refused the query itself
        return exc.errno != errno.EINVAL


def _info_cgroup(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    CgroupLinkInfo, _at, _new = kinds.CgroupLinkInfo, kinds._at, kinds._new

    c = info.cgroup
    base["cgroup_id"] = int(c.cgroup_id)
    base["attach_type"] = _at(c.attach_type)
    return _new(CgroupLinkInfo, base)


FAMILY = Family(
    name="cgroup",
    attach_types=(*(at for at in AttachType if at.name.startswith("CGROUP_")), AttachType.LSM_CGROUP),
    target=TargetKind.CGROUP,
    feature="cgroup",
    caps=("CAP_NET_ADMIN",),
    hints={
        **MPROG_HINTS,
        ("link_create", errno.EINVAL): "target must be an fd of a cgroup v2 directory and the program's "
                                       "expected_attach_type must match (with before/after: the anchor must be "
                                       "attached there, by link if it was attached by link)",
        ("link_create", errno.EBADF): "target must be an open fd of a cgroup v2 directory",
    },
    info={"CGROUP": _info_cgroup},
    link_types=("CGROUP",),
    opts=(Cgroup,),
    mechanism="BPF_LINK_CREATE on a cgroup v2 directory fd: a cgroup link (multi-attach; before/after ordering "
              "from 6.17)",
    quirks=(
        "the first link of an attach type on the system flips a static key: ~70 us instead of ~4 us",
        "BPF_PROG_QUERY reports no link ids for cgroup hooks on 6.18 (link_id 0)",
        "a detached cgroup link keeps its fd; its info shows cgroup_id 0",
    ),
)

__all__ = ["FAMILY", "Cgroup"]
