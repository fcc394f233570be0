"""User-space probes by binary or library name, function (``FUNC``, ``FUNC+OFF``, ``FUNC@LIB``, versioned
``malloc@@GLIBC_2.2.5``) or offset, optionally for one process and as that process sees its files
(``bpflink.targets``: ``/proc/PID/root``, ``/proc/PID/maps``).

>>> # not run as a doctest: needs a loaded uprobe program `prog`, libssl, an app and its pids
>>> link = uprobe(prog, "libc.so.6", "malloc")  # doctest: +SKIP
>>> link = uprobe(prog, None, "SSL_write@libssl.so.3", pid=4242)  # doctest: +SKIP
>>> link = uprobe_multi(prog, "/usr/bin/python3.11", "PyObject_Get*", retprobe=True)  # doctest: +SKIP
>>> group = uprobe_in(prog, "/usr/local/bin/app", "handle", pids=[101, 202])  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import opts as _opts
from .. import perf
from .._fd import FdLike
from ..create import link_create
from ..enums import AttachType
from ..errors import NotSupportedError
from ..link import Link
from ..opts._check import S32_MAX, integer, u64
from ..symbols import match_symbols, symbol_offset
from ..targets import Target, resolve_binary, split_function
from . import tracefs as _tracefs
from .group import LinkGroup
from .legacy import check_mode, refuse_cookie, single_probes
from .tracefs import local_cpu
from .tracing import parse_func_offset, perf_link

BinaryArg = "str | os.PathLike[str] | None"


def resolve_probe(binary: str | os.PathLike[str] | None, func: str | None = None, offset: int = 0, *,
                  pid: int | None = None) -> tuple[Target, int]:
    """The target file and the file offset a uprobe on ``binary``/``func``(+``offset``) goes to.

    ``func`` may be ``"name"``, ``"name+0x10"``, ``"name@libssl.so.3"`` (then ``binary`` may be None),
    ``"malloc@@GLIBC_2.2.5"``; without ``func``, ``offset`` is a file offset.
    """
    off = u64("offset", offset)
    if func is not None:
        if not isinstance(func, str) or not func:
            raise TypeError(f"func must be a non-empty str, got {func!r}")
        name, lib = split_function(func)
        if "+" in name:
            name, extra = parse_func_offset(name) if "@" not in name else (name, 0)
            off += extra
        if lib is not None:
            binary = lib
    if binary is None:
        raise ValueError("uprobe needs a binary (path or library name), or func='FUNC@LIBRARY'")
    target = resolve_binary(binary, pid=pid)
    if func is None:
        return target, off
    return target, symbol_offset(target.path, name) + off


def uprobe(prog: FdLike, binary: str | os.PathLike[str] | None, func: str | None = None, *, offset: int = 0,
           pid: int | None = None, cookie: int = 0, ref_ctr_offset: int = 0, retprobe: bool = False,
           mode: str = "auto") -> Link:
    """A uprobe (``retprobe=True``: uretprobe) through a perf event; the Link owns it.

    ``pid``: only that process fires it, and ``binary`` is resolved as that process sees it (containers).
    ``ref_ctr_offset``: a USDT-style semaphore's file offset the kernel increments while probed.
    ``mode``: ``"auto"``, ``"link"`` (perf_event link, 5.15+) or ``"legacy"`` (perf event ioctl, no cookie);
    ``"tracefs"``: the probe made through tracefs ``uprobe_events``, attached with the ioctl (libbpf's legacy
    mode); ``"auto"`` also goes through tracefs where the uprobe PMU cannot make the probe.
    """
    check_mode(mode)
    if pid is not None:
        integer("pid", pid, 1, S32_MAX)
    u64("cookie", cookie)
    u64("ref_ctr_offset", ref_ctr_offset)
    target, off = resolve_probe(binary, func, offset, pid=pid)
    return _uprobe_at(prog, target.path, off, retprobe=retprobe, pid=pid, cookie=cookie,
                      ref_ctr_offset=ref_ctr_offset, mode=mode)


def _uprobe_at(prog: FdLike, path: str, off: int, *, retprobe: bool = False, pid: int | None = None,
               cookie: int = 0, ref_ctr_offset: int = 0, mode: str = "auto") -> Link:
    """A uprobe at file offset ``off`` of ``path``: the uprobe PMU, or tracefs ``uprobe_events`` (``mode``)."""
    p = -1 if pid is None else pid
    if mode == "tracefs":
        refuse_cookie(cookie, f"uprobe {path} through tracefs")
    else:
        try:
            ev = perf.open_uprobe(path, off, retprobe, pid=p, ref_ctr_offset=ref_ctr_offset,
                                  cpu=local_cpu() if p == -1 else -1)
        except NotSupportedError as exc:  # no uprobe PMU, or one without ref_ctr_offset: tracefs uprobe_events
            if mode == "link":
                raise
            try:
                ev, event = _tracefs.uprobe_event(path, off, retprobe, pid=p, ref_ctr_offset=ref_ctr_offset)
            except FileNotFoundError:
                raise exc from None
            return perf_link(prog, ev, cookie=cookie, extra=(event,), mode=mode)
        return perf_link(prog, ev, cookie=cookie, mode=mode)
    ev, event = _tracefs.uprobe_event(path, off, retprobe, pid=p, ref_ctr_offset=ref_ctr_offset)
    return perf_link(prog, ev, cookie=cookie, extra=(event,), mode=mode)


def uretprobe(prog: FdLike, binary: str | os.PathLike[str] | None, func: str | None = None, **kw: Any) -> Link:
    """A uretprobe: ``uprobe(..., retprobe=True)``."""
    return uprobe(prog, binary, func, retprobe=True, **kw)


def uprobe_multi(prog: FdLike, binary: str | os.PathLike[str], patterns: str | Sequence[str], *,
                 pid: int | None = None, cookies: Sequence[int] | None = None, retprobe: bool = False,
                 session: bool = False, unique_match: bool = False, mode: str = "auto") -> Link:
    """One uprobe_multi link (kernel >= 6.6) on the functions of ``binary`` that ``patterns`` name: a glob over
    its ELF symbols (``"PyObject_Get*"``) or a list of names. ``unique_match``: a glob must match exactly one.

    ``mode``: ``"link"`` the uprobe_multi link; ``"legacy"`` one single uprobe per function (a ``LegacyLink``
    of kind ``"single_probes"``: one perf event and link/ioctl each; ``"tracefs"``: each made through tracefs);
    ``"auto"`` the link where the kernel has it.
    """
    check_mode(mode)
    target = resolve_binary(binary, pid=pid)
    if isinstance(patterns, str):
        if any(c in patterns for c in "*?["):
            found = match_symbols(target.path, patterns, unique_match=unique_match)
            offsets = list(found.values())
        else:
            offsets = [symbol_offset(target.path, patterns)]
    else:
        offsets = [symbol_offset(target.path, p) for p in patterns]
    built = _opts.UprobeMulti(target.path, offsets=offsets, cookies=cookies, pid=pid,
                              retprobe=retprobe if not session else False, session=session or None)
    at = AttachType.TRACE_UPROBE_SESSION if session else AttachType.TRACE_UPROBE_MULTI
    if mode not in ("legacy", "tracefs"):
        try:
            return link_create(prog, None, at, built)
        except NotSupportedError:
            if mode == "link" or session:
                raise
    if session:
        raise NotSupportedError("uprobe.session as single probes", "a session needs the uprobe_multi link's "
                                "entry/return pairing", min_kernel="6.13")
    cks = list(cookies) if cookies is not None else [0] * len(offsets)
    if len(cks) != len(offsets):
        raise ValueError(f"cookies: {len(cks)} given for {len(offsets)} functions")

    inner = "tracefs" if mode == "tracefs" else "auto"

    def one(off: int, ck: int) -> Callable[[], Link]:
        return lambda: _uprobe_at(prog, target.path, off, retprobe=retprobe, pid=pid, cookie=ck, mode=inner)

    return single_probes([one(o, c) for o, c in zip(offsets, cks)],
                         [f"uprobe:{target.path}+{o:#x}" for o in offsets])


def uprobe_in(prog: FdLike, binary: str | os.PathLike[str], func: str | None, pids: Iterable[int], *,
              offset: int = 0, cookie: int = 0, retprobe: bool = False, pid_filter: bool = False) -> LinkGroup:
    """Probe ``binary`` as each process of ``pids`` sees it (e.g. one per container), attaching once per
    distinct file (device, inode) rather than once per pid; ``pid_filter=True`` makes one pid-filtered
    probe per process instead. Returns a ``LinkGroup`` named ``"dev:ino"`` (or ``"pid"``), made all-or-nothing.
    """
    from ..targets import resolve_targets

    pid_list = list(pids)
    if pid_filter:
        return LinkGroup.attach({str(p): (lambda p=p: uprobe(prog, binary, func, offset=offset, pid=p,
                                                               cookie=cookie, retprobe=retprobe))
                                 for p in pid_list})
    targets = resolve_targets(binary, pid_list)

    def make(t: Target) -> Link:
        off = u64("offset", offset) if func is None else symbol_offset(t.path, func) + offset
        return _uprobe_at(prog, t.path, off, retprobe=retprobe, cookie=cookie)

    return LinkGroup.attach({f"{t.dev}:{t.ino}": (lambda t=t: make(t)) for t in targets})


__all__ = ["resolve_probe", "uprobe", "uprobe_in", "uprobe_multi", "uretprobe"]
