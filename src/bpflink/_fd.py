"""File-descriptor plumbing shared by Link, Program and Map."""

from __future__ import annotations

import os
import warnings
from typing import Any, Protocol, TypeVar, Union, runtime_checkable

_Owner = TypeVar("_Owner", bound="FdOwner")


@runtime_checkable
class HasFileno(Protocol):
    def fileno(self) -> int: ...


FdLike = Union[int, HasFileno]


def as_fd(obj: object, what: str) -> int:
    """An fd from an int or anything with ``fileno()``; ``TypeError``/``ValueError`` otherwise.

    >>> as_fd(3, "prog")
    3
    """
    # Hot path of link_create (bench/): exact ints and fileno() owners are tested with type() and getattr, not
    # isinstance(obj, HasFileno): a runtime_checkable Protocol walks its attributes on every isinstance
    # (~40k instructions on 3.11); getattr is the same test (attribute present and not None).
    if type(obj) is int:
        fd = obj
    elif getattr(type(obj), "fileno", None) is _OWNER_FILENO:  # Program, Map, Link: what their fileno() does
        fd = obj._fd  # type: ignore[attr-defined]
        if fd < 0:
            raise ValueError(f"I/O operation on closed {type(obj).__name__}")
    else:
        fileno = getattr(obj, "fileno", None)  # int has no fileno; an int subclass is used as the int
        if fileno is not None and not isinstance(obj, int):
            fd = fileno()
            if type(fd) is not int and (not isinstance(fd, int) or isinstance(fd, bool)):
                raise TypeError(f"{what}.fileno() returned {type(fd).__name__}, not int")
        elif isinstance(obj, int) and not isinstance(obj, bool):
            fd = obj
        else:
            raise TypeError(f"{what} must be an int fd or have fileno(), not {type(obj).__name__}")
    if fd < 0 or fd > 0x7FFFFFFF:
        raise ValueError(f"{what} fd must be in 0..2**31-1, got {fd}")
    return fd if type(fd) is int else int(fd)  # int() of an exact int is a costly no-op


class FdOwner:
    """Owns one fd: ``close()`` is idempotent, a context manager, and closing on garbage collection warns.

    Every bpflink object that holds a kernel object (Link, Program, Map) is one. After ``os.fork()`` the
    child holds its own copy of the fd; closing it there does not affect the parent.
    """

    _fd: int

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @property
    def fd(self) -> int:
        """The file descriptor; ``ValueError`` once closed."""
        if self._fd < 0:
            raise ValueError(f"I/O operation on closed {type(self).__name__}")
        return self._fd

    def fileno(self) -> int:
        fd = self._fd  # not self.fd: one Python call less on link_create's hot path (bench/)
        if fd < 0:
            raise ValueError(f"I/O operation on closed {type(self).__name__}")
        return fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        """Close the fd (idempotent)."""
        fd = self._fd
        if fd >= 0:
            self._fd = -1
            _os_close(fd)

    def detach_fd(self) -> int:
        """Give up ownership: return the fd, which the caller must close."""
        fd, self._fd = self.fd, -1
        return fd

    def __enter__(self: _Owner) -> _Owner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        # paid by every owner at garbage collection (link_create's bench loop too): the closed case first,
        # with no call; a try costs nothing in 3.11 and covers an __init__ that failed before setting _fd
        try:
            if self._fd < 0:
                return
            fd = self._fd
        except AttributeError:
            return
        if fd >= 0:
            self._fd = -1
            try:
                warnings.warn(f"unclosed {type(self).__name__} (fd {fd})", ResourceWarning, stacklevel=2)
                os.close(fd)
            except Exception:  # interpreter shutdown: modules may already be gone
                pass

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state}>"


_os_close = os.close  # bound once: close() and __del__ are on the hot path
_OWNER_FILENO = FdOwner.fileno  # as_fd reads _fd directly from owners that keep this fileno()
