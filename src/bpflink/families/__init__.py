"""One module per link family, each holding its ``Family`` record and its opts builder; this registry answers
which family an attach type belongs to.

>>> family_of(AttachType.TCX_EGRESS)
'tcx'
>>> by_name("netns").target
<TargetKind.NETNS: 'netns'>
>>> [f.name for f in all()][:3]
['cgroup', 'freplace', 'iter']
"""

from __future__ import annotations

from ..enums import AttachType
from ..errors import register_family_hints
from . import (
    cgroup,
    freplace,
    iter,
    kprobe_multi,
    netfilter,
    netkit,
    netns,
    other,
    perf_event,
    sockmap,
    struct_ops,
    tcx,
    tracing,
    uprobe_multi,
    xdp,
)
from ._family import Family, TargetKind

# one line per family module; `other` (what no family claims) last
_ALL: tuple[Family, ...] = tuple(m.FAMILY for m in (
    cgroup, freplace, iter, kprobe_multi, netfilter, netkit, netns, perf_event, sockmap, struct_ops, tcx, tracing,
    uprobe_multi, xdp, other))
_BY_NAME: dict[str, Family] = {f.name: f for f in _ALL}
_OTHER: Family = _BY_NAME["other"]


def _by_attach_type() -> dict[AttachType, Family]:
    table: dict[AttachType, Family] = {}
    for fam in _ALL:
        for at in fam.attach_types:
            if at in table:  # a record's mistake, found at import rather than by a wrong hint later
                raise RuntimeError(f"{at.name} is claimed by both {table[at].name} and {fam.name}")
            table[at] = fam
    return table


_BY_TYPE = _by_attach_type()


def record_of(attach_type: AttachType | int) -> Family:
    """The ``Family`` record of an attach type (the ``other`` family for attach types no family claims).

    >>> record_of(AttachType.XDP).name
    'xdp'
    """
    return _BY_TYPE.get(AttachType(attach_type), _OTHER)


def family_of(attach_type: AttachType | int) -> str:
    """The family name of an attach type: ``"cgroup"``, ``"tcx"``, ``"uprobe_multi"``, ... or ``"other"``.

    >>> family_of(AttachType.TCX_EGRESS)
    'tcx'
    """
    return _BY_TYPE.get(AttachType(attach_type), _OTHER).name


def by_name(name: str) -> Family:
    """The ``Family`` record named ``name``; ``KeyError`` naming the known families otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no link family {name!r} (families: {', '.join(_BY_NAME)})") from None


def all() -> tuple[Family, ...]:
    """Every family record, ``other`` last."""
    return _ALL


def _hint(family: str, op: str, err: int) -> str | None:
    fam = _BY_NAME.get(family)
    return None if fam is None else fam.hint(op, err)


register_family_hints(_hint)

__all__ = ["Family", "TargetKind", "all", "by_name", "family_of", "record_of"]
