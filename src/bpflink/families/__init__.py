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

import importlib
import pkgutil
from types import ModuleType

from ..enums import AttachType
from ._family import Family, TargetKind


def _family_modules() -> list[ModuleType]:
    """Every module of this package not starting with ``_``, ``other`` last: a new family is a new module."""
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    names.sort(key=lambda name: name == "other")
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


_ALL: tuple[Family, ...] = tuple(m.FAMILY for m in _family_modules())
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


__all__ = ["Family", "TargetKind", "all", "by_name", "family_of", "record_of"]
