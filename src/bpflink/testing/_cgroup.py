"""``Cgroup``: a fresh cgroup v2 directory, a way to run a command or a Python callable inside it, removal after.

>>> # not run as a doctest: needs a loaded program `prog`; runs ping
>>> with Cgroup.create() as cg:  # doctest: +SKIP
...     link = bpflink.link_create(prog, cg.fd, AttachType.CGROUP_INET_EGRESS)
...     cg.run(["ping", "-c", "1", "127.0.0.1"]).returncode
0
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._names import mountpoint, unique


def cgroup2_root() -> Path:
    """Where cgroup v2 is mounted: ``$BPFLINK_CGROUP2``, else the first ``cgroup2`` mount; OSError if none."""
    env = os.environ.get("BPFLINK_CGROUP2")
    if env and os.path.exists(os.path.join(env, "cgroup.procs")):
        return Path(env)
    found = mountpoint("cgroup2")
    if found is None:
        raise FileNotFoundError("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)")
    return Path(found)


class Cgroup:
    """A cgroup v2 directory this object created; ``close()`` moves what is left in it out and removes it.

    ``path``: the directory; ``fd``: an ``O_RDONLY|O_DIRECTORY`` fd of it (opened on first use, closed by
    ``close()``), what ``link_create`` takes as a cgroup target.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def create(cls, tag: str = "cg", *, parent: str | os.PathLike[str] | None = None) -> Cgroup:
        """Make ``<parent>/bpflink-<worker>-<pid>-<n>-<tag>`` (parent: the cgroup v2 root)."""
        base = Path(parent) if parent is not None else cgroup2_root()
        path = base / unique(tag)
        path.mkdir()
        return cls(path)

    @property
    def fd(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        return self._fd

    def fileno(self) -> int:
        return self.fd

    @property
    def procs(self) -> list[int]:
        """The pids inside now."""
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def enter(self, pid: int = 0) -> None:
        """Move process ``pid`` (0: the calling one) into this cgroup."""
        (self.path / "cgroup.procs").write_text(str(pid or os.getpid()))

    def run(self, target: Sequence[str] | str | Callable[..., Any], *args: Any, timeout: float = 60,
            **kwargs: Any) -> Any:
        """Run ``target`` inside the cgroup and wait for it.

        A command (list, or a string run by ``sh -c``): a child process that enters the cgroup before exec;
        returns its ``CompletedProcess`` (text output captured; ``check`` etc. go to ``subprocess.run``).
        A callable: called as ``target(*args, **kwargs)`` in a forked child that entered the cgroup; returns what
        it returned (pickled back) or raises what it raised. The parent never joins the cgroup.

        >>> cg = Cgroup.create()
        >>> cg.run(lambda: os.getpid() in cg.procs), os.getpid() in cg.procs
        (True, False)
        >>> cg.close()
        """
        if callable(target):
            return self._call(target, args, kwargs, timeout)
        if args:
            raise TypeError("extra positional arguments are for callables; put a command's arguments in its list")
        procs = str(self.path / "cgroup.procs")

        def enter() -> None:
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        cmd = ["sh", "-c", target] if isinstance(target, str) else list(target)
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(cmd, preexec_fn=enter, timeout=timeout, **kwargs)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout: float) -> Any:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 0
            try:
                os.close(rfd)
                self.enter()
                try:
                    payload = (True, fn(*args, **kwargs))
                except BaseException as exc:
                    payload, code = (False, exc), 1
                try:
                    data = pickle.dumps(payload)
                except Exception as exc:  # an unpicklable result or exception
                    data = pickle.dumps((False, RuntimeError(f"{fn!r} returned/raised something unpicklable: {exc}")))
                with os.fdopen(wfd, "wb") as out:
                    out.write(data)
            except BaseException:
                code = 2
            finally:
                os._exit(code)
        os.close(wfd)
        deadline = time.monotonic() + timeout
        chunks = []
        with os.fdopen(rfd, "rb") as inp:
            os.set_blocking(inp.fileno(), True)
            import select

            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([inp], [], [], left)[0]:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise TimeoutError(f"{fn!r} did not finish within {timeout} s inside {self.path}")
                chunk = inp.read1(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        os.waitpid(pid, 0)
        if not chunks:
            raise RuntimeError(f"the child running {fn!r} in {self.path} died without a result")
        ok, value = pickle.loads(b"".join(chunks))
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Close the fd, move any process still inside to the parent cgroup and remove the directory (and any
        child cgroups made inside it). Idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self.path.exists():
            return
        for sub in sorted((p for p in self.path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _evacuate(sub, self.path.parent)
            _rmdir(sub)
        _evacuate(self.path, self.path.parent)
        _rmdir(self.path)

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"Cgroup({str(self.path)!r})"


def _evacuate(path: Path, to: Path) -> None:
    try:
        pids = (path / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(OSError):  # exited meanwhile
            (to / "cgroup.procs").write_text(pid)


def _rmdir(path: Path) -> None:
    # a process that just exited may keep the cgroup busy (EBUSY) for a moment
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    path.rmdir()
