"""Is this fd a BPF link? The one kind check of the library (``bpflink.link.is_link``) and the command line.

Imports only ``lowlevel`` (which ``import bpflink`` loads anyway), so the command line's start-up stays small.

>>> # not run as a doctest: needs a link `link`
>>> is_link(link.fd)  # doctest: +SKIP
True
"""

from __future__ import annotations

import os

from . import lowlevel as ll

_EBADF, _EINVAL = 9, 22
#: a link's anon inode name: opened by id or pin / made by link_create (both seen on 6.18)
LINK_INODES = ("bpf-link", "bpf_link")


def is_link_fd(fd: int) -> bool | None:
    """Whether ``fd`` is a BPF link, as the kernel says: ``BPF_LINK_UPDATE`` with an invalid program fd fails
    with ``EINVAL`` before anything else for a non-link and with ``EBADF`` (the program fd) for a link, and
    changes nothing either way. None when the kernel does not say (e.g. EPERM of an unprivileged caller)."""
    ret = ll.bpf_link_update(fd, -1, None)
    if ret == -_EBADF:
        return True
    if ret == -_EINVAL:
        return False
    return None


def kind_from_proc(fd: int) -> str | None:
    """The anon inode name of ``fd`` (``bpf-link``, ``bpf-map``...), None without /proc."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}").removeprefix("anon_inode:")
    except OSError:
        return None


def is_link(fd: int) -> bool:
    """Whether ``fd`` is a BPF link: the kernel's answer (``is_link_fd``), else the anon inode's name where /proc
    is mounted, else assumed (the kernel will refuse link operations on anything else)."""
    kind = is_link_fd(fd)
    if kind is None:
        name = kind_from_proc(fd)
        return name is None or name in LINK_INODES
    return kind


__all__ = ["LINK_INODES", "is_link", "is_link_fd", "kind_from_proc"]
