"""``links()``: every BPF link on the system, like ``bpftool link list``.

>>> for info in bpflink.links():  # doctest: +SKIP
...     print(info.id, info.type.name, info.prog_id)

Memory stays flat in the number of links: one link is opened, decoded and closed at a time.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from . import lowlevel as ll
from ._rawinfo import InfoError, walk
from .errors import check
from .info import LinkInfo, decode

ffi = ll.ffi
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
    # the ids, fds and first info calls are made in C, 256 links per crossing (_rawinfo.walk); the fd stays
    # open only for the types whose decoding makes a second call (names, arrays). bench/cli.py compares this
    # walk with the same loop in C.
    batches = walk()
    close = os.close
    while True:
        try:
            info, fd = next(batches)
        except StopIteration:
            return
        except InfoError as exc:
            _walk_failed(-exc.err, "link walk (BPF_LINK_GET_NEXT_ID, GET_FD_BY_ID, GET_INFO_BY_FD)")
        if fd < 0:
            yield decode(fd, info)
            continue
        try:
            decoded = decode(fd, info)
        finally:
            close(fd)  # before yielding: a consumer that stops early leaks nothing
        yield decoded


__all__ = ["link_ids", "links"]
