"""``links()``: every BPF link on the system, like ``bpftool link list``.

>>> # not run as a doctest: prints this machine's links, different everywhere
>>> for info in bpflink.links():  # doctest: +SKIP
...     print(info.id, info.type.name, info.prog_id)

Memory stays flat in the number of links: one link is opened, decoded and closed at a time.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from . import lowlevel as ll
from .errors import check
from .info import LinkInfo, decode

ffi = ll.ffi
_INFO_SIZE = ffi.sizeof("struct bpf_link_info")
_SKIP = (-errno.ENOENT, -errno.EAGAIN)
_EPERM_HINT = "walking and opening links by id (BPF_LINK_GET_NEXT_ID, BPF_LINK_GET_FD_BY_ID) needs CAP_SYS_ADMIN"


def _walk_failed(ret: int, what: str) -> None:
    check(ret, what, hint=_EPERM_HINT if ret == -errno.EPERM else None)


def link_ids() -> Iterator[int]:
    """The ids of all links, ascending (``bpf_link_get_next_id`` until ``ENOENT``)."""
    next_id = ffi.new("__u32 *")
    current = 0
    while True:
        ret = ll.bpf_link_get_next_id(current, next_id)
        if ret == -errno.ENOENT:
            return
        if ret < 0:
            _walk_failed(ret, f"link_get_next_id({current})")
        current = int(next_id[0])
        yield current


def links() -> Iterator[LinkInfo]:
    """Decoded info of every link on the system. Needs CAP_SYS_ADMIN (``PermissionError`` otherwise).

    A link released between its id being listed and opened (``ENOENT``) is skipped, not an error; so is one
    still being set up (``EAGAIN``: the kernel has reserved its id but not yet settled it, and the creator may
    still abort it).
    """
    # bound once per walk (through lowlevel, so tests can inject rare kernel answers there): bench/cli.py
    # compares this walk with the same loop in C
    get_fd, get_info, close = ll.bpf_link_get_fd_by_id, ll.bpf_link_get_info_by_fd, os.close
    new = ffi.new
    size = new("__u32 *")
    for link_id in link_ids():
        fd = get_fd(link_id)
        if fd < 0:
            if fd in _SKIP:
                continue
            _walk_failed(fd, f"link_get_fd_by_id({link_id})")
        try:
            info = new("struct bpf_link_info *")
            size[0] = _INFO_SIZE
            ret = get_info(fd, info, size)
            if ret < 0:
                if ret == -errno.ENOENT:
                    continue
                check(ret, f"link_get_info_by_fd(link {link_id})")
            decoded = decode(fd, info)
        finally:
            close(fd)  # before yielding: a consumer that stops early leaks nothing
        yield decoded


__all__ = ["link_ids", "links"]
