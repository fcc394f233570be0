"""The netns family: ``BPF_SK_LOOKUP`` and ``BPF_FLOW_DISSECTOR`` links on a network namespace (kernel >= 5.8).

The target is an fd of the namespace or its path (``/proc/<pid>/ns/net``, ``/run/netns/<name>``); no opts.

>>> FAMILY.target.takes_path
True
"""

from __future__ import annotations

import errno
from types import ModuleType
from typing import Any

from ..enums import AttachType
from ._family import Family, TargetKind


def _info_netns(fd: int, info: Any, base: dict[str, Any], kinds: ModuleType) -> Any:
    NetnsLinkInfo, _at, _new = kinds.NetnsLinkInfo, kinds._at, kinds._new

    n = info.netns
    base["netns_ino"] = int(n.netns_ino)
    base["attach_type"] = _at(n.attach_type)
    return _new(NetnsLinkInfo, base)


FAMILY = Family(
    name="netns",
    attach_types=(AttachType.SK_LOOKUP, AttachType.FLOW_DISSECTOR),
    target=TargetKind.NETNS,
    feature="netns",
    caps=("CAP_NET_ADMIN",),
    hints={
        ("link_create", errno.E2BIG): "a network namespace holds one flow dissector (and up to 64 sk_lookup "
                                      "links); close or update the link already there",
        ("link_create", errno.EINVAL): "target must be an fd (or path) of a network namespace, e.g. "
                                       "/run/netns/<name>, and the program type must match the attach type",
    },
    info={"NETNS": _info_netns},
    link_types=("NETNS",),
    aliases={"sk_lookup": "SK_LOOKUP", "flow_dissector": "FLOW_DISSECTOR"},
    mechanism="BPF_LINK_CREATE on a network namespace fd: a netns link (flow dissector or sk_lookup)",
    quirks=(
        "one flow dissector per network namespace (E2BIG for a second), up to 64 sk_lookup links",
    ),
)

__all__ = ["FAMILY"]
