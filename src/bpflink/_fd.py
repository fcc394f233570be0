"""File-descriptor plumbing shared by Link, Program and Map."""

from __future__ import annotations

from typing import Protocol, TypeVar, Union, runtime_checkable

from ._fdowner import FdBase as _FdBase

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


class FdOwner(_FdBase):
    """Owns one fd: ``close()`` is idempotent, a context manager, and closing on garbage collection warns.

    Every bpflink object that holds a kernel object (Link, Program, Map) is one. After ``os.fork()`` the
    child holds its own copy of the fd; closing it there does not affect the parent.

    ``fd``, ``fileno()``, ``closed``, ``close()``, the context manager and the finalizer (close with a
    ``ResourceWarning``) are the C base in include/fdowner.c: in Python they cost more than the syscalls
    of a link's whole life (bench/).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def detach_fd(self) -> int:
        """Give up ownership: return the fd, which the caller must close."""
        fd, self._fd = self.fd, -1
        return fd

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state}>"


_OWNER_FILENO = FdOwner.fileno  # as_fd reads _fd directly from owners that keep this fileno()
