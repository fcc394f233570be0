"""Attaching without a kernel link, where the kernel lacks the link kind (as libbpf and cilium/ebpf fall back).

* ``perf_event_ioctl``: a tracepoint/kprobe/uprobe program on its perf event with ``PERF_EVENT_IOC_SET_BPF`` and
  ``PERF_EVENT_IOC_ENABLE`` (every kernel bpflink supports; perf_event links arrive in 5.15). Detaching is closing
  the perf event. BPF cookies need a perf_event link: refused here.
* ``tracefs_ioctl``: the same ioctl on a kprobe/uprobe event made through tracefs ``kprobe_events``/
  ``uprobe_events`` (``bpflink.attach.tracefs``), where the perf PMU cannot make the probe, or forced with
  ``mode="tracefs"`` (libbpf's legacy attach mode); closing the handle also removes the event.
* ``single_probes``: kprobe_multi (5.18) / uprobe_multi (6.6) as one single probe per function.
* ``netlink``: XDP through rtnetlink ``IFLA_XDP`` before XDP links (5.9) (``bpflink.attach.netlink``).

The handle is a ``LegacyLink``: ``close()``, context manager, ``kind``/``legacy``, ``info()`` saying the mechanism;
what needs a kernel link object (``id``, ``pin``, ``update``, ``detach``, ``from_pin``) raises
``NotSupportedError`` naming the minimum kernel.

>>> # not run as a doctest: needs a loaded tracepoint program `prog` (tests/test_attach.py)
>>> link = bpflink.attach.tracepoint(prog, "syscalls:sys_enter_getpid", mode="legacy")  # doctest: +SKIP
>>> link.kind, link.legacy  # doctest: +SKIP
('perf_event_ioctl', True)
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from .. import lowlevel as ll
from .._fd import FdLike, FdOwner, PathArg, as_fd
from ..enums import AttachType
from ..errors import NotSupportedError, error
from ..link import Link, OwningLink

# <linux/perf_event.h>: _IO('$', 0) and _IOW('$', 8, __u32); the ioctl's argument is the program fd itself
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408
MODES = ("auto", "link", "legacy", "tracefs")
#: the kernel where each mechanism's kernel link appears (what a legacy handle lacks)
MIN_KERNEL = {"perf_event_ioctl": "5.15", "tracefs_ioctl": "5.15", "single_probes": "5.18", "prog_attach": "5.7",
              "netlink": "5.9"}


def check_mode(mode: object) -> str:
    """``"auto"`` (a kernel link where the kernel has the kind, else the fallback), ``"link"``, ``"legacy"`` (the
    perf event ioctl) or ``"tracefs"`` (kprobes/uprobes made through tracefs, then the ioctl)."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be one of {MODES}, not {type(mode).__name__}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def refuse_cookie(cookie: int, what: str) -> None:
    """BPF cookies live in the kernel link: without one they cannot be given."""
    if cookie:
        raise NotSupportedError("bpf_cookie", f"{what}: BPF cookies need a perf_event link, and this attach uses "
                                "the legacy perf event ioctl (mode='legacy', or the kernel lacks perf_event "
                                "links)", min_kernel="5.15")


@dataclass(frozen=True)
class LegacyLinkInfo:
    """What ``LegacyLink.info()`` says: the mechanism (``kind``), and the probes it is made of."""

    kind: str
    legacy: bool
    events: tuple[str, ...]
    min_kernel_for_link: str

    def details(self) -> dict[str, Any]:
        return {"kind": self.kind, "legacy": self.legacy, "events": list(self.events),
                "min_kernel_for_link": self.min_kernel_for_link}


class LegacyLink(OwningLink):
    """A program attached without a kernel link object. Its fd is the perf event (``perf_event_ioctl``) or a
    duplicate of the first probe's (``single_probes``); ``close()`` closes it and what it owns, which detaches."""

    legacy = True

    def __init__(self, fd: int, *, kind: str, events: Sequence[str], owned: tuple[Any, ...] = (),
                 attach_type: AttachType | None = AttachType.PERF_EVENT) -> None:
        super().__init__(fd, attach_type=attach_type, owned=owned)
        self._kind = kind
        self._events = tuple(events)

    @property
    def kind(self) -> str:
        """``"perf_event_ioctl"``, ``"tracefs_ioctl"``, ``"single_probes"``, ``"prog_attach"`` or ``"netlink"``."""
        return self._kind

    @property
    def events(self) -> tuple[str, ...]:
        """The perf events (``"kprobe:do_nanosleep"``...) this handle attached the program to."""
        return self._events

    def _refuse(self, what: str) -> NoReturn:
        self.fd  # noqa: B018  -- a closed handle says so first
        need = MIN_KERNEL.get(self._kind, "5.15")
        raise NotSupportedError(f"{what} of a {self._kind} attachment", "there is no kernel link object (the "
                                "program sits on perf events); attach with mode='link' on a kernel that has "
                                "the link kind", min_kernel=need)

    @property
    def id(self) -> int:
        self._refuse("link id")

    @property
    def prog_id(self) -> int:
        self._refuse("prog_id")

    def info(self) -> LegacyLinkInfo:  # type: ignore[override]
        """The mechanism used, not ``struct bpf_link_info`` (there is no kernel link to ask)."""
        self.fd  # noqa: B018  -- a closed handle says so
        return LegacyLinkInfo(self._kind, True, self._events, MIN_KERNEL.get(self._kind, "5.15"))

    def update(self, new_prog: FdLike, old_prog: FdLike | None = None) -> None:
        self._refuse("update")

    def update_map(self, new_map: FdLike, old_map: FdLike | None = None) -> None:
        self._refuse("update_map")

    def detach(self) -> None:
        self._refuse("detach (close() detaches)")

    def pin(self, path: PathArg) -> None:
        self._refuse("pin")

    @property
    def perf_event(self) -> Any:
        """The perf event this handle is (``perf_event_ioctl``/``tracefs_ioctl``: ``.closed``, ``.kind``,
        ``.name``); None for ``single_probes`` (each probe is in ``owned``)."""
        return _EventView(self) if self._kind in ("perf_event_ioctl", "tracefs_ioctl") else None

    @property
    def perf_events(self) -> tuple[Any, ...]:
        """The perf events this handle holds (one per CPU for sampling; each probe's for ``single_probes``)."""
        # single probes: sub-handles (ioctl, before 5.15) or perf_event links (5.15+), each on its own event
        subs = tuple(r.perf_event for r in self._owned if isinstance(r, Link) and r.perf_event is not None)
        if subs:
            return subs
        ev = self.perf_event
        return (ev,) if ev is not None else ()

    def __repr__(self) -> str:
        if self.closed:
            return f"<LegacyLink {self._kind} closed>"
        return f"<LegacyLink {self._kind} {', '.join(self._events[:3])}{'...' if len(self._events) > 3 else ''}>"


class ProgAttachLink(LegacyLink):
    """A cgroup program attached with ``BPF_PROG_ATTACH`` (``BPF_F_ALLOW_MULTI``), before cgroup links (5.7).
    Its fd is the cgroup's (a duplicate); ``close()`` detaches with ``BPF_PROG_DETACH`` and closes it."""

    def __init__(self, cgroup_fd: int, prog_fd: int, attach_type: AttachType, name: str) -> None:
        super().__init__(cgroup_fd, kind="prog_attach", events=(name,), attach_type=attach_type)
        self._prog_fd = prog_fd
        self._lock = threading.Lock()

    def close(self) -> None:
        """Detach (``BPF_PROG_DETACH``), then close the cgroup and program fds (idempotent)."""
        with self._lock:
            if self._prog_fd < 0:
                return
            prog_fd, self._prog_fd = self._prog_fd, -1
            try:
                ret = ll.bpf_prog_detach2(prog_fd, self.fileno(), int(self.attach_type or 0))
            finally:
                os.close(prog_fd)
                OwningLink.close(self)
        if ret < 0 and -ret != errno.ENOENT:  # ENOENT: someone detached it already
            raise error(-ret, f"prog_detach({self._events[0]})", family="cgroup")


def prog_attach(prog: FdLike, cgroup: str | os.PathLike[str] | int, attach_type: AttachType) -> ProgAttachLink:
    """``BPF_PROG_ATTACH`` of ``prog`` to ``cgroup`` (a cgroup v2 directory or an fd) with ``BPF_F_ALLOW_MULTI``,
    as libbpf does for cgroups without links."""
    prog_fd = as_fd(prog, "prog")
    if isinstance(cgroup, int) and not isinstance(cgroup, bool):
        cg_fd, name = os.dup(cgroup), f"cgroup fd {cgroup}"
    elif isinstance(cgroup, (str, os.PathLike)):
        name = os.fspath(cgroup)
        cg_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        raise TypeError(f"cgroup must be a path or an fd, not {type(cgroup).__name__}")
    own_prog = -1
    try:
        own_prog = os.dup(prog_fd)  # detach names the program: keep it alive as long as the handle
        ret = ll.bpf_prog_attach(own_prog, cg_fd, int(attach_type), ll.BPF_F_ALLOW_MULTI)
        if ret < 0:
            raise error(-ret, f"prog_attach({attach_type.name}, {name})", family="cgroup",
                        hint="the program's expected attach type must match, and the path be a cgroup v2 "
                             "directory")
    except BaseException:
        os.close(cg_fd)
        if own_prog >= 0:
            os.close(own_prog)
        raise
    return ProgAttachLink(cg_fd, own_prog, attach_type, f"{attach_type.name.lower()}:{name}")


class _EventView:
    """The perf event a ``perf_event_ioctl`` handle holds as its own fd."""

    def __init__(self, link: LegacyLink) -> None:
        self._link = link
        self.kind, _, self.name = link.events[0].partition(":")

    @property
    def closed(self) -> bool:
        return bool(self._link.closed)

    @property
    def fd(self) -> int:
        """The perf event's fd (as ``PerfEvent.fd``): the handle's own."""
        return int(self._link.fd)

    def fileno(self) -> int:
        return self._link.fileno()


def attach_ioctl(prog: FdLike, event: FdOwner, *, extra: tuple[Any, ...] = ()) -> LegacyLink:
    """``PERF_EVENT_IOC_SET_BPF`` + ``PERF_EVENT_IOC_ENABLE`` of ``prog`` on ``event``; the handle takes the
    event's fd (and ``extra``: tracefs events, which make the kind ``tracefs_ioctl``). On failure the event and
    ``extra`` are closed."""
    name = f"{getattr(event, 'kind', 'perf')}:{getattr(event, 'name', '?')}"
    try:
        prog_fd = as_fd(prog, "prog")
        try:
            fcntl.ioctl(event.fileno(), PERF_EVENT_IOC_SET_BPF, prog_fd)
        except OSError as exc:
            raise error(exc.errno or 0, f"perf_event ioctl(PERF_EVENT_IOC_SET_BPF, {name})", family="perf_event",
                        hint="the program type does not match the event (tracepoint/kprobe/uprobe programs), "
                             "or another program is already attached to this event (EEXIST)") from None
        try:
            fcntl.ioctl(event.fileno(), PERF_EVENT_IOC_ENABLE, 0)
        except OSError as exc:
            raise error(exc.errno or 0, f"perf_event ioctl(PERF_EVENT_IOC_ENABLE, {name})",
                        family="perf_event") from None
    except BaseException:
        event.close()
        for r in extra:
            r.close()
        raise
    kind = "tracefs_ioctl" if any(type(r).__name__ == "TracefsProbe" for r in extra) else "perf_event_ioctl"
    return LegacyLink(event.detach_fd(), kind=kind, events=(name,), owned=extra)


def single_probes(makers: Sequence[Callable[[], Any]], names: Sequence[str]) -> LegacyLink:
    """One handle over one probe per function (each made by a maker), all-or-nothing."""
    made: list[Any] = []
    try:
        for make in makers:
            made.append(make())
        if not made:
            raise ValueError("nothing to attach")
        fd = os.dup(made[0].fileno())
    except BaseException:
        for r in reversed(made):
            r.close()
        raise
    return LegacyLink(fd, kind="single_probes", events=tuple(names), owned=tuple(made),
                      attach_type=None)


__all__ = ["MODES", "LegacyLink", "LegacyLinkInfo", "ProgAttachLink", "attach_ioctl", "check_mode", "prog_attach",
           "refuse_cookie",
           "single_probes"]
