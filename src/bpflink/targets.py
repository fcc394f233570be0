"""User-space probe targets: binaries and libraries as users name them, also inside other mount namespaces.

``resolve_binary(name, pid=None)`` returns a ``Target``: ``path`` is what the kernel can open from *our* mount
namespace (give it to uprobe/uprobe_multi), ``dev``/``ino`` identify the file, ``name`` is what was asked.

Names:
  * a path (contains ``/``): that file; with ``pid``, the path *as that process sees it*, resolved under
    ``/proc/PID/root`` (symbolic links re-rooted there too, so a container's ``/usr/lib`` is its own; a relative
    path is relative to that process's working directory);
  * a bare name without ``.so`` (``"python3.11"``): first an executable in ``PATH`` (the process's own, with
    ``pid``), then ``/usr/bin:/usr/sbin``, as libbpf does; then a library name as below;
  * a library name: ``"libc.so.6"`` (exact soname), ``"libssl.so"`` (also ``libssl.so.3``...), ``"c"``
    (``libc.so*``), found like the dynamic loader finds them: ``LD_LIBRARY_PATH``, ``/etc/ld.so.cache``,
    the multiarch and default directories; with ``pid``, first the library that process actually mapped
    (``/proc/PID/maps``, matched by device and inode), then the search above inside its root (its own
    ``ld.so.cache`` and ``LD_LIBRARY_PATH``).

``resolve_targets(name, pids)`` resolves one name in many processes and keeps one ``Target`` per distinct file
(device, inode): containers started from one image share the files, so a probe attaches once.

>>> # not run as a doctest: paths differ per machine (here /lib/...); pids 4242, 101... are examples
>>> resolve_binary("libc.so.6").path  # doctest: +SKIP
'/usr/lib/x86_64-linux-gnu/libc.so.6'
>>> resolve_binary("/usr/local/bin/app", pid=4242)  # doctest: +SKIP
Target(path='/proc/4242/root/usr/local/bin/app', name='/usr/local/bin/app', dev=..., ino=..., pid=4242, ...)
>>> [t.pids for t in resolve_targets("/usr/bin/python3", [101, 202, 303])]  # doctest: +SKIP
[(101, 202), (303,)]
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

_CACHE_MAGIC = b"glibc-ld.so.cache1.1"
_MAX_LINKS = 40
_PID_MAX = 0x7FFFFFFF  # what perf_event_open and uprobe_multi take; the kernel's pid_max is lower (<= 2**22)


@dataclass(frozen=True)
class Target:
    """One ELF file to probe. ``path``: openable here; ``name``: as asked; ``pids``: the processes it was found
    for (empty when resolved without a pid); ``mnt_ns``: the mount namespace it was resolved in."""

    path: str
    name: str
    dev: int
    ino: int
    pid: int | None = None
    mnt_ns: str | None = None
    pids: tuple[int, ...] = field(default=())

    @property
    def key(self) -> tuple[int, int]:
        return (self.dev, self.ino)


def _ns(pid: int | None) -> str:
    if pid is None:
        return "this mount namespace"
    try:
        return f"mount namespace {os.readlink(f'/proc/{pid}/ns/mnt')} of pid {pid}"
    except OSError:
        return f"the mount namespace of pid {pid}"


def _check_pid(pid: object) -> int:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise TypeError(f"pid must be an int, not {type(pid).__name__}")
    if not 0 < pid <= _PID_MAX:
        raise ValueError(f"pid must be in 1..{_PID_MAX}, got {pid}")
    if not os.path.exists(f"/proc/{pid}"):
        raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone (or not in this pid namespace): "
                                 "cannot resolve paths in its mount namespace")
    return pid


def _root(pid: int) -> str:
    root = f"/proc/{pid}/root"
    try:
        os.stat(root)
    except PermissionError:
        raise PermissionError(errno.EACCES, f"no permission to the root of process {pid} ({_ns(pid)}): "
                              "needs CAP_SYS_PTRACE over it (root, or the same user)", root) from None
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, f"process {pid} exited while its root was being resolved") from None
    return root


def _in_root(root: str, path: str) -> str:
    """``path`` resolved as a process whose root is ``root`` would: absolute links stay under ``root``."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cur = root + "/" + "/".join([*done, part])
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            return root + "/" + "/".join([*done, part, *parts])
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, f"too many symbolic links resolving {path!r}")
            target = os.readlink(cur)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return root + "/" + "/".join(done)


def _stat_file(path: str, name: str, pid: int | None) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"{name!r} does not exist in {_ns(pid)}", path) from None
    except PermissionError:
        raise PermissionError(errno.EACCES, f"{name!r} is not accessible in {_ns(pid)}", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name!r} in {_ns(pid)} is not a regular file ({path})")
    return st


def _elf_ident(path: str) -> bytes | None:
    """The ELF class/data/machine bytes, None when ``path`` is no readable ELF file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.pread(fd, 20, 0)
    finally:
        os.close(fd)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    return head[4:6] + head[18:20]


_SELF_IDENT = _elf_ident(sys.executable) or _elf_ident("/proc/self/exe")


def _matches(base: str, name: str) -> bool:
    """Does file name ``base`` satisfy library ``name`` ("libc.so.6", "libssl.so", "c")?"""
    if base == name or base.startswith(name + "."):
        return True
    if name.startswith("lib") and ".so" not in name and base.startswith(name + "-") and ".so" in base:
        return True  # "libc" -> libc-2.31.so (older glibc names its files so)
    if "." not in name and not name.startswith("lib"):  # "c" -> libc.so*, as -lc would
        return base == f"lib{name}.so" or base.startswith(f"lib{name}.so.")
    return False


def _ld_cache(root: str) -> list[tuple[str, str]]:
    """(soname, path) pairs of ``root``/etc/ld.so.cache (the glibc 2.x format; anything else is ignored)."""
    path = root.rstrip("/") + "/etc/ld.so.cache"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return []
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return []
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(64 << 20)
    finally:
        os.close(fd)
    start = data.find(_CACHE_MAGIC)  # after the old-format table when both are present
    if start < 0 or start + 48 > len(data):
        return []
    nlibs, = struct.unpack_from("=I", data, start + 20)
    nlibs = min(nlibs, (len(data) - start - 48) // 24)
    out = []

    def cstr(off: int) -> str | None:
        if not 0 <= off < len(data):
            return None
        end = data.find(b"\0", off)
        return data[off:end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")

    for i in range(nlibs):
        _flags, key, value = struct.unpack_from("=iII", data, start + 48 + 24 * i)
        k, v = cstr(key), cstr(value)  # offsets from the start of the file in this format
        if k and v:
            out.append((k, v))
    return out


def _search_dirs(root: str, env_path: str | None) -> list[str]:
    dirs = [d for d in (env_path or "").split(":") if d]
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    for prefix in ("/lib", "/usr/lib", "/usr/local/lib"):
        if multiarch:
            dirs.append(f"{prefix}/{multiarch}")
    dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"]
    return dirs


def _environ_var(pid: int, var: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read(1 << 20)
    except OSError:
        return None
    for item in env.split(b"\0"):
        if item.startswith(var.encode() + b"="):
            return item.split(b"=", 1)[1].decode("utf-8", "surrogateescape")
    return None


def _candidates(name: str, root: str, env_path: str | None) -> Iterator[str]:
    """Paths (inside ``root``) where the loader would look for library ``name``, in its order."""
    dirs = _search_dirs(root, env_path)
    ld_path = dirs[:len([d for d in (env_path or "").split(":") if d])]
    for d in ld_path:
        yield from _dir_matches(root, d, name)
    for soname, path in _ld_cache(root):
        if _matches(soname, name):
            yield path
    for d in dirs[len(ld_path):]:
        yield from _dir_matches(root, d, name)


def _dir_matches(root: str, d: str, name: str) -> Iterator[str]:
    full = _in_root(root, d) if root != "/" else d
    try:
        entries = sorted(os.listdir(full), key=lambda e: (e != name, len(e), e))
    except OSError:
        return
    for e in entries:
        if _matches(e, name):
            yield d.rstrip("/") + "/" + e


def _find_executable(name: str, pid: int | None) -> tuple[str, str] | None:
    """(path as seen in the namespace, path openable here) of executable ``name`` in PATH, then /usr/bin and
    /usr/sbin (libbpf's rule for a bare binary name); None when there is none."""
    root = "/" if pid is None else _root(pid)
    env = os.environ.get("PATH") if pid is None else _environ_var(pid, "PATH")
    for d in [*(env or "").split(":"), "/usr/bin", "/usr/sbin"]:
        if not d.startswith("/"):
            continue  # "" or relative entries: the caller's cwd is no place to look for a probe target
        cand = d.rstrip("/") + "/" + name
        here = cand if pid is None else _in_root(root, cand)
        try:
            st = os.stat(here)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and os.access(here, os.R_OK | os.X_OK, effective_ids=True):
            return cand, here
    return None


def _cwd(pid: int) -> str:
    """The working directory of ``pid``, as that process sees it."""
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except PermissionError:
        raise PermissionError(errno.EACCES, f"no permission to the working directory of process {pid} "
                              f"({_ns(pid)}): needs CAP_SYS_PTRACE over it (root, or the same user)") from None
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone") from None


def mapped_files(pid: int) -> list[Target]:
    """Every distinct file (device, inode) process ``pid`` mapped, in map order, each openable here
    (``/proc/PID/root/...``, or ``/proc/PID/map_files/...`` for a deleted or shadowed file)."""
    pid = _check_pid(pid)
    out: dict[tuple[int, int], Target] = {}
    for rng, dev, ino, path in _maps(pid):
        if (dev, ino) not in out:
            found = _file_of(pid, rng, dev, ino, path)
            if found is not None:
                out[dev, ino] = found
    return list(out.values())


def find_library(name: str, *, pid: int | None = None) -> str:
    """The path of library ``name`` as the dynamic loader (of process ``pid``) would find it.

    The path is as that process sees it (use ``resolve_binary`` for one openable here).
    ``FileNotFoundError`` says where it looked.
    """
    if pid is not None:
        _check_pid(pid)
    return _find_library(name, pid)[0]


def _maps(pid: int) -> list[tuple[str, int, int, str]]:
    """(address range, device, inode, path) of each file-backed mapping of ``pid``."""
    out = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise ProcessLookupError(errno.ESRCH, f"process {pid} is gone") from None
    except PermissionError:
        raise PermissionError(errno.EACCES, f"no permission to read /proc/{pid}/maps ({_ns(pid)})") from None
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith("/") or fields[4] == "0":
            continue
        major, minor = (int(x, 16) for x in fields[3].split(":"))
        out.append((fields[0], os.makedev(major, minor), int(fields[4]), fields[5]))
    return out


def _mapped(pid: int, name: str, by_path: bool) -> Target | None:
    """The file ``pid`` mapped whose path (or, for a library name, file name) matches, checked by dev+inode."""
    try:
        maps = _maps(pid)
    except PermissionError:
        return None  # another user's process: its root may still be readable
    for rng, dev, ino, path in maps:
        clean = path.removesuffix(" (deleted)")
        if clean == name if by_path else _matches(os.path.basename(clean), name):
            found = _file_of(pid, rng, dev, ino, path)
            if found is not None:
                return found
    return None


def _file_of(pid: int, rng: str, dev: int, ino: int, path: str) -> Target | None:
    """One mapping's file, openable here: its path under the process's root when that is the very file mapped
    (device + inode), else ``/proc/PID/map_files/RANGE`` (the file mapped, even deleted or shadowed)."""
    clean = path.removesuffix(" (deleted)")
    candidates = [] if path.endswith(" (deleted)") else [_in_root(_root(pid), clean)]
    candidates.append(f"/proc/{pid}/map_files/{rng}")
    for cand in candidates:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (dev, ino) or cand.startswith(f"/proc/{pid}/map_files/"):
            return Target(cand, clean, st.st_dev, st.st_ino, pid, _ns(pid), (pid,))
    return None


def _find_library(name: str, pid: int | None) -> tuple[str, str]:
    """(path as seen in the namespace, path openable here)."""
    root = "/" if pid is None else _root(pid)
    env = os.environ.get("LD_LIBRARY_PATH") if pid is None else _environ_var(pid, "LD_LIBRARY_PATH")
    looked = []
    for cand in _candidates(name, root, env):
        here = cand if pid is None else _in_root(root, cand)
        looked.append(cand)
        ident = _elf_ident(here)
        if ident is not None and (_SELF_IDENT is None or ident == _SELF_IDENT):
            return cand, here
    where = "LD_LIBRARY_PATH, ld.so.cache, " + ", ".join(_search_dirs(root, None)[:4]) + "..."
    other = f"; candidates of another architecture: {', '.join(looked[:3])}" if looked else ""
    raise FileNotFoundError(errno.ENOENT, f"no library {name!r} for this architecture in {_ns(pid)} (searched "
                            f"{where}{other})")


def resolve_binary(name: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, pid: int | None = None) -> Target:
    """The ``Target`` for a binary or library ``name`` (a path, an executable or a library name), optionally as
    ``pid`` sees it.

    ``FileNotFoundError``/``PermissionError``/``ProcessLookupError`` name the namespace and the path and why.
    """
    if not isinstance(name, (str, bytes, os.PathLike)):
        raise TypeError(f"binary must be a str or os.PathLike[str], not {type(name).__name__}")
    sname = os.fsdecode(name)
    if not sname or "\0" in sname:
        raise ValueError(f"binary must be a non-empty path or library name without NUL, got {name!r}")
    if pid is not None:
        pid = _check_pid(pid)
    if "/" in sname:
        if pid is None:
            path = os.path.abspath(sname)
            st = _stat_file(path, sname, None)
            return Target(path, sname, st.st_dev, st.st_ino)
        if not sname.startswith("/"):
            sname = "/" + "/".join(p for p in f"{_cwd(pid)}/{sname}".split("/") if p and p != ".")
        found = _mapped(pid, sname, by_path=True)
        if found is not None:
            return found
        path = _in_root(_root(pid), sname)
        st = _stat_file(path, sname, pid)
        return Target(path, sname, st.st_dev, st.st_ino, pid, _ns(pid), (pid,))
    if pid is not None:
        found = _mapped(pid, sname, by_path=False)
        if found is not None:
            return found
    if ".so" not in sname:
        exe = _find_executable(sname, pid)
        if exe is not None:
            st = _stat_file(exe[1], exe[0], pid)
            return Target(exe[1], exe[0], st.st_dev, st.st_ino, pid, None if pid is None else _ns(pid),
                          () if pid is None else (pid,))
    try:
        seen, here = _find_library(sname, pid)
    except FileNotFoundError as exc:
        if ".so" in sname:
            raise
        raise FileNotFoundError(errno.ENOENT, f"no executable {sname!r} in PATH, /usr/bin or /usr/sbin, and "
                                f"{exc.strerror}") from None
    st = _stat_file(here, seen, pid)
    return Target(here, seen, st.st_dev, st.st_ino, pid, None if pid is None else _ns(pid),
                  () if pid is None else (pid,))


def resolve_targets(name: str | os.PathLike[str], pids: Iterable[int]) -> list[Target]:
    """``name`` resolved in each process of ``pids``, one ``Target`` per distinct file (device, inode), in order.

    Each ``Target.pids`` lists the processes that share it. Errors for one pid are raised (naming it): a
    caller attaching to a fleet filters gone processes first.
    """
    out: dict[tuple[int, int], Target] = {}
    for pid in pids:
        t = resolve_binary(name, pid=pid)
        prev = out.get(t.key)
        if prev is None:
            out[t.key] = t
        else:
            out[t.key] = Target(prev.path, prev.name, prev.dev, prev.ino, prev.pid, prev.mnt_ns,
                                (*prev.pids, pid))
    return list(out.values())


def split_function(spec: str) -> tuple[str, str | None]:
    """``"SSL_read@libssl.so.3"`` -> ("SSL_read", "libssl.so.3"); versions (``malloc@@GLIBC_2.2.5``) stay."""
    if "@@" not in spec and "@" in spec:
        func, _, lib = spec.rpartition("@")
        if "/" in lib or ".so" in lib or lib.startswith("lib"):
            return func, lib
    return spec, None


__all__ = ["Target", "find_library", "mapped_files", "resolve_binary", "resolve_targets", "split_function"]
