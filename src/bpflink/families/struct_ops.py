"""The struct_ops family: a ``SEC(".struct_ops.link")`` map made live as a link (kernel >= 6.4).

``link_create``'s program argument is the struct_ops map; there is no target. ``bpflink.struct_ops`` writes the
map's value first.

>>> FAMILY.link_types
('STRUCT_OPS',)
"""

from __future__ import annotations

import errno
from types import ModuleType
from typing import Any

from ..enums import AttachType
from ._family import Family, TargetKind


def _info_struct_ops(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    StructOpsLinkInfo, _new = kinds.StructOpsLinkInfo, kinds._new

    base["map_id"] = int(info.struct_ops.map_id)
    return _new(StructOpsLinkInfo, base)


FAMILY = Family(
    name="struct_ops",
    attach_types=(AttachType.STRUCT_OPS,),
    target=TargetKind.NONE,
    feature="struct_ops",
    caps=("CAP_PERFMON",),
    hints={
        ("link_create", errno.EINVAL): "the prog argument must be a struct_ops map created with BPF_F_LINK "
                                       "(SEC(\".struct_ops.link\")) whose value was written "
                                       "(bpflink.struct_ops.write_value); update_map needs the same ops name",
    },
    info={"STRUCT_OPS": _info_struct_ops},
    link_types=("STRUCT_OPS",),
    mechanism="BPF_LINK_CREATE on a struct_ops map created with BPF_F_LINK: a struct_ops link",
    quirks=(
        'the map must be created with BPF_F_LINK (SEC(".struct_ops.link")) and its value written',
    ),
)

__all__ = ["FAMILY"]
