"""``Link``: owns a BPF link fd. Close, update, detach, pin, and inspect it.

>>> # not run as a doctest: needs a loaded program `prog` and a cgroup fd (tests/test_core.py)
>>> with bpflink.link_create(prog, cgroup_fd, AttachType.CGROUP_INET_EGRESS) as link:  # doctest: +SKIP
...     link.pin("/sys/fs/bpf/egress")
...     print(link.info())
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from . import _linkkind
from . import lowlevel as ll
from ._fd import FdLike, FdOwner, PathArg, as_fd, path_bytes
from .enums import AttachType
from .errors import check, error
from .families import family_of
from .families._anchor import register_link_class

if TYPE_CHECKING:
    import io

    from .info import LinkInfo

# the one kind check (bpflink._linkkind: the CLI imports it without this module)
is_link, is_link_fd, _kind_from_proc = _linkkind.is_link, _linkkind.is_link_fd, _linkkind.kind_from_proc
_GET_FD_BY_ID_HINT = "opening an object by id needs CAP_SYS_ADMIN (BPF_*_GET_FD_BY_ID), or the id does not exist"


def _link_id_of(fd: int) -> int | None:
    """The link id of ``fd``, None when ``fd`` is not a link (asked of the kernel, /proc as a fallback)."""
    if not is_link(fd):
        return None
    from .info import raw_link_info  # deferred: info.py loads only when a link is inspected (import time)

    return int(raw_link_info(fd).id)


class Link(FdOwner):
    """A BPF link. Closing it releases the attachment unless it is pinned (or another fd holds it).

    Threads: every call releases the GIL inside C; one Link may be used from several threads, but closing it
    while another thread uses it is the caller's race. After ``os.fork()`` the child's Link is a copy of the
    fd: ``close()`` (or exit) there leaves the parent's link attached, while ``detach()``, ``update()`` and
    ``pin()`` act on the one kernel link both share.
    """

    # class-level defaults: every Link starts unpinned with its id not yet asked for, so creating one stores
    # only its fd and attach type
    _pinned: str | None = None
    _id: int | None = None

    def __init__(self, fd: int, *, attach_type: AttachType | int | None = None) -> None:
        self._fd = fd  # FdOwner.__init__, inlined: Link() is on link_create's hot path (bench/README.md)
        # a member is kept as it is; only a plain int goes through the enum's lookup
        self._attach_type = (attach_type if attach_type is None or isinstance(attach_type, AttachType)
                             else AttachType(attach_type))

    @property
    def attach_type(self) -> AttachType | None:
        """The attach type it was created with (None for a link opened by pin or id); read-only."""
        # stored in a slot of the C base (include/fdowner.c): link_create's hot path sets it from C
        at: AttachType | None = self._attach_type
        return at

    @property
    def _family(self) -> str | None:
        return None if self.attach_type is None else family_of(self.attach_type)

    @property
    def _what(self) -> str:
        return f"link {self.attach_type.name if self.attach_type is not None else self._fd}"

    # --- identity -------------------------------------------------------------------------------------------
    @property
    def id(self) -> int:
        """The kernel's id of this link (as ``bpftool link`` shows it)."""
        if self._id is None:
            from .info import raw_link_info  # deferred, as in every method below: only inspection needs info.py

            self._id = int(raw_link_info(self.fd).id)  # one call: no name or array buffers
        return self._id

    @property
    def prog_id(self) -> int:
        """The id of the program the link currently runs."""
        from .info import raw_link_info

        return int(raw_link_info(self.fd).prog_id)

    def info(self) -> LinkInfo:
        """Decode ``struct bpf_link_info`` for this link."""
        from .info import link_info

        return link_info(self.fd)

    # --- operations -----------------------------------------------------------------------------------------
    def update(self, new_prog: FdLike, old_prog: FdLike | None = None) -> None:
        """Atomically swap the program; with ``old_prog`` only if it is the current one (``BPF_F_REPLACE``)."""
        new_fd = as_fd(new_prog, "new_prog")
        opts = ll.new_link_update_opts()
        if old_prog is not None:
            opts.flags = ll.BPF_F_REPLACE
            opts.old_prog_fd = as_fd(old_prog, "old_prog")
        ret = ll.bpf_link_update(self.fd, new_fd, opts)
        check(ret, f"{self._what}: update", op="update",
              hint="old_prog is not the link's current program" if old_prog is not None and ret == -errno.EPERM
              else None)

    def update_map(self, new_map: FdLike, old_map: FdLike | None = None) -> None:
        """For struct_ops links: swap the struct_ops map (``old_map`` must be current when given)."""
        new_fd = as_fd(new_map, "new_map")
        opts = ll.new_link_update_opts()
        if old_map is not None:
            opts.flags = ll.BPF_F_REPLACE
            opts.old_map_fd = as_fd(old_map, "old_map")
        # libbpf's bpf_link_update() takes the new map fd in the prog slot for struct_ops links
        ret = ll.bpf_link_update(self.fd, new_fd, opts)
        # EINVAL's causes are struct_ops-specific: the family's hint
        check(ret, f"{self._what}: update_map", family="struct_ops",
              op="link_create" if ret == -errno.EINVAL else "update_map")

    def detach(self) -> None:
        """Detach from the hook; the fd stays open (and ``info()`` shows the target gone)."""
        check(ll.bpf_link_detach(self.fd), f"{self._what}: detach", op="detach")

    # --- iterators (bpflink.iter) ----------------------------------------------------------------------------
    def open_iter(self) -> io.BufferedReader:
        """For iterator links: a new walk, as a binary file object to read until EOF."""
        from .iter import open_iter

        return open_iter(self)

    def read_iter(self, *, text: bool = False) -> Any:
        """For iterator links: the whole output of one walk (``bytes``, or ``str`` with ``text=True``)."""
        from .iter import read_iter

        return read_iter(self, text=text)

    # --- pinning --------------------------------------------------------------------------------------------
    def pin(self, path: PathArg) -> None:
        """Pin in bpffs: the link then outlives this fd and this process (``str``, ``bytes`` or path-like)."""
        raw = path_bytes(path)
        spath = os.fsdecode(raw)
        check(ll.bpf_obj_pin(self.fd, raw), f"{self._what}: pin {spath}", op="pin")
        self._pinned = spath

    @property
    def pinned_path(self) -> str | None:
        return self._pinned

    def unpin(self) -> None:
        """Remove the pin this Link made (``ValueError`` if it made none).

        The path is checked to still hold this very link (same link id) first: if it was removed and replaced
        by another object's pin, ``ValueError`` and nothing is deleted.
        """
        if self._pinned is None:
            raise ValueError("this Link was not pinned by pin(); unlink the bpffs path to unpin it")
        path = self._pinned
        raw = os.fsencode(path)
        fd = ll.bpf_obj_get(raw)
        if fd < 0:
            if fd == -errno.ENOENT:
                self._pinned = None  # already gone: nothing of ours is left to delete
            raise error(-fd, f"{self._what}: unpin {path}", op="unpin",
                        hint=None if fd == -errno.ENOENT else "nothing was deleted")
        try:
            other = _link_id_of(fd)
        finally:
            os.close(fd)
        if other != self.id:
            held = "an object that is not a link" if other is None else f"link id {other}"
            raise ValueError(f"{path} now holds {held}, not this link (id {self.id}): it was re-pinned by "
                             "someone else; nothing was deleted")
        os.unlink(raw)
        self._pinned = None

    @classmethod
    def from_pin(cls, path: PathArg) -> Link:
        """Open a pinned link (``TypeError`` if the pin is a program or map, not a link)."""
        raw = path_bytes(path)
        spath = os.fsdecode(raw)
        fd = check(ll.bpf_obj_get(raw), f"bpf_obj_get({spath})", op="bpf_obj_get")
        return cls._checked(fd, f"{spath} is pinned but is not a link")

    @classmethod
    def from_id(cls, link_id: int) -> Link:
        """Open a new fd to an existing link by its id."""
        if isinstance(link_id, bool) or not isinstance(link_id, int):
            raise TypeError(f"link_id must be an int, not {type(link_id).__name__}")
        if not 0 < link_id < 1 << 32:
            raise ValueError(f"link_id must be in 1..2**32-1, got {link_id}")
        fd = check(ll.bpf_link_get_fd_by_id(link_id), f"link_get_fd_by_id({link_id})",
                   hint=_GET_FD_BY_ID_HINT)
        return cls._checked(fd, f"id {link_id} is not a link")

    @classmethod
    def _checked(cls, fd: int, what: str) -> Link:
        # bpf_obj_get accepts any BPF object: the kernel tells a link apart (_link_id_of), not /proc
        try:
            link_id = _link_id_of(fd)
        except BaseException:
            os.close(fd)
            raise
        if link_id is None:
            kind = _kind_from_proc(fd)
            os.close(fd)
            raise TypeError(f"{what}" + (f" ({kind})" if kind else ""))
        link = cls(fd)
        link._id = link_id
        return link

    # --- the mechanism (bpflink.attach falls back to attaching without a link: attach.legacy.LegacyLink) -------
    legacy = False

    @property
    def kind(self) -> str:
        """How the program is attached: ``"perf_event_link"``, ``"multi_link"`` (kprobe/uprobe multi, sessions)
        or ``"link"``; a ``LegacyLink`` says ``"perf_event_ioctl"`` or ``"single_probes"``."""
        at = self.attach_type
        if at is not None and at.name == "PERF_EVENT":
            return "perf_event_link"
        if at is not None and at.name.startswith(("TRACE_KPROBE_", "TRACE_UPROBE_")):
            return "multi_link"
        return "link"

    # --- what the link owns besides its fd (bpflink.attach) ---------------------------------------------------
    @property
    def perf_event(self) -> Any:
        """The ``bpflink.perf.PerfEventFd`` this link runs on and owns (None for links not built on one)."""
        owned: tuple[Any, ...] = getattr(self, "_owned", ())
        return next((r for r in owned if type(r).__name__ == "PerfEventFd"), None)  # no import of perf (layers)
    # --- lifecycle (bpflink.lifecycle, bpflink.owners) --------------------------------------------------------
    @classmethod
    def ensure(cls, pin_path: str | os.PathLike[str], prog: FdLike, target: Any, attach_type: AttachType | int | str,
               opts: Any = None) -> tuple[Link, str]:
        """Idempotent pinned link: ``(link, "created" | "updated" | "unchanged")`` (see ``bpflink.lifecycle``)."""
        from .lifecycle import ensure

        return ensure(pin_path, prog, target, attach_type, opts)

    def owners(self) -> Any:
        """The processes holding an fd of this link and the pins referring to it (``bpflink.owners``)."""
        from .owners import owners

        return owners(self.id)

    def __repr__(self) -> str:
        if self.closed:
            return "<Link closed>"
        at = self.attach_type.name if self.attach_type is not None else "?"
        return f"<Link {at} fd={self._fd}>"

    def __reduce__(self) -> Any:
        raise TypeError(f"a {type(self).__name__} owns a file descriptor and cannot be pickled or copied; pin it "
                        "and use Link.from_pin()")


class OwningLink(Link):
    """A ``Link`` that also owns what it was built on (perf events, the links of other CPUs): ``close()`` closes
    them after the link. Made by ``bpflink.attach``; plain ``Link``s keep the C fast path of ``close()``."""

    def __init__(self, fd: int, *, attach_type: AttachType | int | None = None, owned: tuple[Any, ...] = ()) -> None:
        super().__init__(fd, attach_type=attach_type)
        self._owned = owned

    def close(self) -> None:
        """Close the link, then everything it owns (idempotent)."""
        try:
            Link.close(self)
        finally:
            for resource in self._owned:
                resource.close()

    @property
    def perf_events(self) -> tuple[Any, ...]:
        """Every perf event this link owns (one per CPU for a sampling link)."""
        return tuple(r for r in self._owned if type(r).__name__ == "PerfEventFd")


register_link_class(Link)  # anchors (opts.Tcx(before=link)) name it as a link
