"""Typed, frozen views of ``struct bpf_link_info``.

>>> link.info()  # doctest: +SKIP
LinkInfo(type=<LinkType.CGROUP: 3>, id=12, prog_id=40)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import lowlevel as ll
from .enums import LinkType
from .errors import check


@dataclass(frozen=True)
class LinkInfo:
    """The fields every link has."""

    type: LinkType
    id: int
    prog_id: int


def raw_link_info(fd: int) -> Any:
    """``bpf_link_get_info_by_fd`` into a fresh ``struct bpf_link_info``."""
    info = ll.ffi.new("struct bpf_link_info *")
    size = ll.ffi.new("__u32 *", ll.ffi.sizeof("struct bpf_link_info"))
    check(ll.bpf_link_get_info_by_fd(fd, info, size), "link_get_info_by_fd")
    return info


def link_info(fd: int) -> LinkInfo:
    """Decode the link behind ``fd``."""
    info = raw_link_info(fd)
    return LinkInfo(type=LinkType(info.type), id=int(info.id), prog_id=int(info.prog_id))


__all__ = ["LinkInfo", "link_info", "raw_link_info"]
