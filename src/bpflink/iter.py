"""Reading iterator links: each ``bpf_iter_create`` on an iterator link starts a new walk whose output
(what the program wrote with ``bpf_seq_printf``/``bpf_seq_write``) is read like a file until EOF.

>>> # not run as a doctest: needs a loaded iterator program `prog` (tests/test_iter.py)
>>> with link_create(prog, None, AttachType.TRACE_ITER) as link:  # doctest: +SKIP
...     print(link.read_iter(text=True))
...     with link.open_iter() as f:
...         first = f.readline()
"""

from __future__ import annotations

import io
from typing import Literal, overload

from . import lowlevel as ll
from ._fd import FdLike, as_fd
from .errors import check


def open_iter(link: FdLike) -> io.BufferedReader:
    """A new walk of the iterator link ``link`` (a ``Link`` or an fd): a binary file object (``read()``,
    ``readline()``, iteration, ``close()``)."""
    link_fd = as_fd(link, "link")
    what = getattr(link, "_what", f"link fd {link_fd}")  # a Link names its attach type
    fd = check(ll.bpf_iter_create(link_fd), f"{what}: iter_create", op="iter_create")
    return io.open(fd, "rb", closefd=True)  # noqa: UP020  (io.open says which open: an fd, not a path)


@overload
def read_iter(link: FdLike, *, text: Literal[False] = ...) -> bytes: ...
@overload
def read_iter(link: FdLike, *, text: Literal[True]) -> str: ...
@overload
def read_iter(link: FdLike, *, text: bool) -> bytes | str: ...


def read_iter(link: FdLike, *, text: bool = False) -> bytes | str:
    """The whole output of one walk, as bytes (or ``str`` decoded as UTF-8 with ``text=True``)."""
    with open_iter(link) as f:
        data = f.read()
    return data.decode(errors="replace") if text else data


__all__ = ["open_iter", "read_iter"]
