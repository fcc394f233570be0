"""File-descriptor plumbing shared by Link, Program and Map."""

from __future__ import annotations

import os
from typing import Any, Protocol, TypeVar, Union, runtime_checkable

from ._fdowner import FdBase as _FdBase
from ._limits import FD_MAX

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
    # link_create's hot path: exact ints and bpflink's own owners are recognised by type(), anything else by
    # getattr(fileno), which is the test isinstance(obj, HasFileno) makes without walking the Protocol's
    # attributes on every call (bench/README.md has the costs).
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
    if fd < 0 or fd > FD_MAX:
        raise ValueError(f"{what} fd must be in 0..2**31-1, got {fd}")
    return fd if type(fd) is int else int(fd)  # int() of an exact int is a costly no-op


PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def path_bytes(path: object, what: str = "path") -> bytes:
    """A path (``str``, ``bytes`` or ``os.PathLike``) as the bytes the kernel gets; ``ValueError`` when empty or
    holding a NUL (C would stop at it and act on another path), ``TypeError`` for anything else.

    >>> path_bytes("/sys/fs/bpf/x")
    b'/sys/fs/bpf/x'
    >>> path_bytes(b"a\\0b")
    Traceback (most recent call last):
    ...
    ValueError: path must not contain a NUL byte: b'a\\x00b'
    """
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{what} must be a str, bytes or os.PathLike, not {type(path).__name__}")
    raw = os.fsencode(path)
    if not isinstance(raw, bytes):  # a PathLike whose __fspath__ returned something else
        raise TypeError(f"{what}.__fspath__() returned {type(raw).__name__}, not str or bytes")
    if not raw:
        raise ValueError(f"{what} must not be empty")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain a NUL byte: {raw!r}")
    return raw


def c_string(value: object, what: str) -> bytes:
    """A name-like argument (``str`` or ``bytes``) as bytes for C; ``ValueError`` on a NUL byte.

    >>> c_string("GPL", "license")
    b'GPL'
    """
    if isinstance(value, str):
        raw = value.encode()
    elif isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    else:
        raise TypeError(f"{what} must be a str or bytes, not {type(value).__name__}")
    if b"\0" in raw:
        raise ValueError(f"{what} must not contain a NUL byte: {raw!r}")
    return raw


def open_path_target(path: object, family: str, what: str) -> int:
    """Open the path target of a cgroup or netns hook (the caller closes the fd).

    The file type is checked before and after opening, and the open never blocks: a cgroup is opened with
    ``O_DIRECTORY`` and a netns file with ``O_NONBLOCK``, so a FIFO or device at the path is refused
    (``ValueError``) instead of hanging in ``open``.
    """
    import stat  # lazy: only path targets need it

    raw = path_bytes(path, what)
    want_dir = family == "cgroup"
    kind = "a cgroup v2 directory" if want_dir else "a network namespace file (e.g. /run/netns/<name>)"

    def refuse(mode: int) -> ValueError:
        return ValueError(f"{what} {os.fsdecode(raw)!r} must be {kind}, not {_file_kind(mode)}")

    mode = os.stat(raw).st_mode  # FileNotFoundError etc. name the path
    if not (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)):
        raise refuse(mode)
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if want_dir else os.O_NONBLOCK)
    fd = os.open(raw, flags)
    mode = os.fstat(fd).st_mode  # the path may have been replaced between stat and open
    if not (stat.S_ISDIR(mode) if want_dir else stat.S_ISREG(mode)):
        os.close(fd)
        raise refuse(mode)
    return fd


def _file_kind(mode: int) -> str:
    import stat

    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISREG, "a regular file")):
        if test(mode):
            return name
    return "another kind of file"


class FdOwner(_FdBase):
    """Owns one fd: ``close()`` is idempotent, a context manager, and closing on garbage collection warns.

    Every bpflink object that holds a kernel object (Link, Program, Map) is one. After ``os.fork()`` the
    child holds its own copy of the fd; closing it there does not affect the parent.

    ``fd``, ``fileno()``, ``closed``, ``close()``, the context manager and the finalizer (close with a
    ``ResourceWarning``) are the C base in include/fdowner.c, so that owning an fd costs less than the
    syscalls made with it (bench/README.md).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd  # the C setter refuses anything but an int in 0..2**31-1 (ValueError/TypeError)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"fd={self._fd}"
        return f"<{type(self).__name__} {state}>"

    # A copy would share what the owner holds besides the fd (a Program's maps: closing the copy would close
    # them), and a pickle cannot carry an fd: both are refused, as for files.
    def __reduce__(self) -> Any:
        raise TypeError(f"a {type(self).__name__} owns a file descriptor and cannot be pickled or copied; "
                        "pin it and open the pin, or os.dup() its fd")

    def __copy__(self) -> Any:
        self.__reduce__()

    def __deepcopy__(self, memo: Any) -> Any:
        self.__reduce__()


_OWNER_FILENO = FdOwner.fileno  # as_fd reads _fd directly from owners that keep this fileno()
