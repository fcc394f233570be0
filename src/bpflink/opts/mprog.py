"""Opts for the multi-program hooks: ``Tcx``, ``Netkit`` and ``Cgroup`` share one anchor model.

>>> from bpflink.opts import ProgId, Tcx
>>> Tcx(before=ProgId(42), expected_revision=3)  # doctest: +ELLIPSIS
Tcx(before=ProgId(id=42), after=None, anchor=None, expected_revision=3)
"""

from __future__ import annotations

import errno
import functools
import os
from dataclasses import dataclass
from typing import Any, ClassVar

from .._native import has, require
from ..enums import AttachType
from ..errors import NotSupportedError
from ._anchor import Anchor, Relative, fill_mprog, resolve_anchor, revision
from ._base import LinkOpts


@dataclass(frozen=True)
class _Mprog(LinkOpts):
    before: Relative | None = None
    after: Relative | None = None
    anchor: Anchor | None = None
    expected_revision: int | None = None

    member: ClassVar[str] = ""

    def __post_init__(self) -> None:
        resolve_anchor(self.before, self.after, self.anchor)
        if self.expected_revision is not None:
            revision(self.expected_revision)

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        fill_mprog(opts, getattr(opts, self.member), resolve_anchor(self.before, self.after, self.anchor),
                   self.expected_revision)


@dataclass(frozen=True)
class Tcx(_Mprog):
    """``BPF_TCX_INGRESS``/``BPF_TCX_EGRESS`` opts (target: ifindex). Kernel >= 6.6.

    >>> Tcx(after=link_a)  # doctest: +SKIP
    """

    families: ClassVar[frozenset[str]] = frozenset({"tcx"})
    member: ClassVar[str] = "tcx"


@dataclass(frozen=True)
class Netkit(_Mprog):
    """``BPF_NETKIT_PRIMARY``/``BPF_NETKIT_PEER`` opts (target: ifindex of the primary device). Kernel >= 6.7."""

    families: ClassVar[frozenset[str]] = frozenset({"netkit"})
    member: ClassVar[str] = "netkit"


_HAS_CGROUP_MEMBER = has("struct bpf_link_create_opts.cgroup")


@dataclass(frozen=True)
class Cgroup(_Mprog):
    """Opts for ``BPF_CGROUP_*`` links (target: fd of a cgroup v2 directory).

    With no arguments the link is appended (plain multi-attach, kernel >= 5.7). ``before``/``after``/
    ``anchor``/``expected_revision`` order the cgroup's programs (libbpf >= 1.6, kernel >= 6.17).

    >>> Cgroup()
    Cgroup(before=None, after=None, anchor=None, expected_revision=None)
    """

    families: ClassVar[frozenset[str]] = frozenset({"cgroup"})
    member: ClassVar[str] = "cgroup"

    def _fill(self, opts: Any, attach_type: AttachType, keep: list[Any]) -> None:
        if resolve_anchor(self.before, self.after, self.anchor) is None and self.expected_revision is None:
            return
        if not _HAS_CGROUP_MEMBER:
            require("struct bpf_link_create_opts.cgroup", "cgroup_mprog", min_kernel="6.17")
        if not _kernel_orders_cgroups():
            raise NotSupportedError(
                "cgroup_mprog",
                "cgroup link ordering: this kernel keeps no revision for cgroup hooks (query reports 0), "
                "so it would silently ignore "
                "before/after/expected_revision",
                min_kernel="6.17",
            )
        super()._fill(opts, attach_type, keep)


@functools.lru_cache(maxsize=1)
def _kernel_orders_cgroups() -> bool:
    """Probed once: kernels with cgroup multi-prog ordering (6.17+) report a revision >= 1 for every cgroup hook;
    older kernels leave it 0 and ignore the ordering fields instead of refusing them."""
    from ..query import query

    try:
        with open("/proc/self/mounts") as mounts:
            root = next((line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]), None)
        if root is None:
            return True  # nothing to ask: let the kernel answer
        revision = query(root, AttachType.CGROUP_INET_EGRESS).revision
        return revision is not None and revision > 0  # None: the query has no revision (< 6.6)
    except OSError as exc:  # EINVAL: the kernel refused the query itself
        return exc.errno != errno.EINVAL


os.register_at_fork(after_in_child=_kernel_orders_cgroups.cache_clear)  # a child may see another kernel view
