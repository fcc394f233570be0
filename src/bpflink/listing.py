"""``links()``: every BPF link on the system, like ``bpftool link list``.

>>> for info in bpflink.links():  # doctest: +SKIP
...     print(info.id, info.type.name, info.prog_id)
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from . import lowlevel as ll
from .errors import check
from .info import LinkInfo, decode, raw_link_info


def link_ids() -> Iterator[int]:
    """The ids of all links, ascending (``bpf_link_get_next_id`` until ``ENOENT``)."""
    next_id = ll.ffi.new("__u32 *")
    current = 0
    while True:
        ret = ll.bpf_link_get_next_id(current, next_id)
        if ret == -errno.ENOENT:
            return
        check(ret, f"link_get_next_id({current})")
        current = int(next_id[0])
        yield current


def links() -> Iterator[LinkInfo]:
    """Decoded info of every link on the system. Needs CAP_SYS_ADMIN (``PermissionError`` otherwise).

    A link released between its id being listed and opened (``ENOENT``) is skipped, not an error; so is one
    still being set up (``EAGAIN``: the kernel has reserved its id but not yet settled it, and the creator may
    still abort it).
    """
    for link_id in link_ids():
        fd = ll.bpf_link_get_fd_by_id(link_id)
        if fd in (-errno.ENOENT, -errno.EAGAIN):
            continue
        fd = check(fd, f"link_get_fd_by_id({link_id})")
        try:
            info = decode(fd, raw_link_info(fd))
        finally:
            os.close(fd)  # before yielding: a consumer that stops early leaks nothing
        yield info


__all__ = ["link_ids", "links"]
