"""Idempotent pinned links for agents that restart: ``Link.ensure`` and ``ensure_group``.

An agent calls ``Link.ensure(pin, prog, target, attach_type)`` at every start. The first start creates the
link and pins it; a restart with the same program leaves it alone; a restart with a new program swaps it in
with one guarded ``BPF_LINK_UPDATE`` (``BPF_F_REPLACE`` naming the program it found), so the hook never runs
without a program and two agents racing cannot both win silently.

>>> # not run as a doctest: needs a loaded program `prog`, that cgroup and bpffs
>>> link, what = Link.ensure("/sys/fs/bpf/agent/egress", prog, "/sys/fs/cgroup/x",
...                          AttachType.CGROUP_INET_EGRESS)  # doctest: +SKIP
>>> what  # doctest: +SKIP
'created'

Crash safety, step by step (a process killed at any point leaves the old or the new program attached):

1. read the pin and its link info: nothing changed yet;
2. no pin: ``link_create`` attaches the new program; killed now, the kernel releases the link with the
   process's last fd (the hook is as it was before);
3. ``bpf_obj_pin`` at the final path: atomic, it fails with ``EEXIST`` if the path appeared meanwhile
   (another agent won: our link is closed again and ``EnsureConflictError`` names the winner). Pinning
   at a temporary name and renaming would add a step whose crash leaves a stray pin keeping a second
   program attached; pinning directly leaves nothing to clean up;
4. pin present: one ``BPF_LINK_UPDATE`` with ``BPF_F_REPLACE``: the kernel swaps atomically or refuses
   (``EPERM``) when another process swapped first.

While two agents race to *create*, both links are attached for the few microseconds until the loser's pin
fails and it closes its link; an upgrade (pin present) never has two.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import lowlevel as ll
from ._fd import FdLike, as_fd
from .enums import AttachType, LinkType
from .errors import check, errno_name, error
from .families import TargetKind, family_of, record_of

if TYPE_CHECKING:
    from .info import LinkInfo
    from .link import Link

#: what ensure() did
CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"



class PinMismatchError(OSError):
    """The pin holds something else (not a link, another hook, a detached link): nothing was changed."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(errno.EEXIST, f"ensure {path}: the pin holds {why}; nothing was changed "
                                       f"[EEXIST]; unpin it (bpflink unpin {path}) if it is stale")
        self.path = path


class EnsureConflictError(OSError):
    """Another process changed the pin or the link between our read and our write; we changed nothing.

    ``current_prog_id`` is the program the link runs now (the winner's), ``link_id`` the link's id.
    """

    def __init__(self, err: int, path: str, why: str, link_id: int | None, current_prog_id: int | None) -> None:
        super().__init__(err, f"ensure {path}: lost a race: {why} [{errno_name(err)}]; our program is not "
                              "attached; call ensure() again to retry against the new state")
        self.path = path
        self.link_id = link_id
        self.current_prog_id = current_prog_id


def _step(name: str) -> None:
    """Called between the steps above; the crash tests replace it in a child to die at one of them."""


# --- identities ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgIdentity:
    """What makes two loaded programs the same program: code (``tag``), type, name and the maps it uses."""

    id: int
    type: int
    name: str
    tag: str
    map_ids: tuple[int, ...]

    def same_program(self, other: ProgIdentity) -> bool:
        """Same id, or the same code, type and name over the same maps (a reload of identical bytes).

        The kernel's tag hashes the instructions with map references zeroed, so equal tags over other maps
        (a restart that made fresh maps) are a different program.
        """
        if self.id == other.id:
            return True
        return (self.tag, self.type, self.name, self.map_ids) == (other.tag, other.type, other.name, other.map_ids)


def prog_identity(prog_fd: int) -> ProgIdentity:
    """Read a program's identity (two ``bpf_prog_get_info_by_fd`` calls: the second for the map ids)."""
    ffi = ll.ffi
    size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
    info = ffi.new("struct bpf_prog_info *")
    check(ll.bpf_prog_get_info_by_fd(prog_fd, info, size), "prog_get_info_by_fd")
    count = int(info.nr_map_ids)
    map_ids: tuple[int, ...] = ()
    if count:
        again = ffi.new("struct bpf_prog_info *")
        ids = ffi.new("__u32[]", count)
        again.nr_map_ids = count
        again.map_ids = int(ffi.cast("uintptr_t", ids))
        size[0] = ffi.sizeof("struct bpf_prog_info")
        check(ll.bpf_prog_get_info_by_fd(prog_fd, again, size), "prog_get_info_by_fd")
        map_ids = tuple(sorted(int(ids[i]) for i in range(min(count, int(again.nr_map_ids)))))
    return ProgIdentity(int(info.id), int(info.type), ffi.string(info.name).decode(errors="replace"),
                        bytes(info.tag).hex(), map_ids)


def prog_identity_by_id(prog_id: int) -> ProgIdentity:
    fd = check(ll.bpf_prog_get_fd_by_id(prog_id), f"prog_get_fd_by_id({prog_id})")
    try:
        return prog_identity(fd)
    finally:
        os.close(fd)


def _target_key(target: Any, at: AttachType) -> tuple[str, int] | None:
    """The link-info field and value that identify ``target`` for this attach type (None: not checkable)."""
    fam = record_of(at)
    if fam.target.takes_path:
        field = "cgroup_id" if fam.target is TargetKind.CGROUP else "netns_ino"
        if isinstance(target, (str, bytes, os.PathLike)):
            return field, os.stat(target).st_ino  # cgroup v2: the directory's inode number is the cgroup id
        return field, os.fstat(as_fd(target, "target")).st_ino
    if fam.target.takes_device:
        if isinstance(target, str) and "/" not in target:
            from .resolve import ifindex

            return "ifindex", ifindex(target)
        if isinstance(target, int) and not isinstance(target, bool):
            return "ifindex", target
    return None


def _describe(info: LinkInfo) -> str:
    details = " ".join(f"{k}={v}" for k, v in info.details().items() if v is not None and not isinstance(v, list))
    return f"link {info.id} ({info.type.name.lower()} {details}, prog {info.prog_id})"


def _mismatch(info: LinkInfo, at: AttachType, key: tuple[str, int] | None) -> str | None:
    """Why this link is not the one ensure() manages for (target, at); None when it is."""
    fam = record_of(at)
    family = fam.name
    want = LinkType[fam.link_types[0]] if fam.link_types else None
    if want is not None and info.type not in {LinkType[t] for t in fam.link_types}:
        return f"a {info.type.name.lower()} link, not a {family} link: {_describe(info)}"
    have_at = getattr(info, "attach_type", None)
    if have_at is not None and have_at != at:
        return f"a link of attach type {have_at.name.lower()}, not {at.name.lower()}: {_describe(info)}"
    if key is not None:
        field, value = key
        have = getattr(info, field, None)
        if have == 0:
            return f"a detached link: {_describe(info)}"
        if have is not None and have != value:
            return f"a link on another target ({field}={have}, want {value}): {_describe(info)}"
    return None


# --- one link -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What ``ensure`` would do at ``path``: ``action`` is created/updated/unchanged or ``"conflict"``."""

    path: str
    action: str
    detail: str
    link_id: int | None = None
    old_prog_id: int | None = None
    new_prog_id: int | None = None


def _path(pin_path: str | bytes | os.PathLike[Any]) -> str:
    path = os.fsdecode(os.fspath(pin_path))
    if "\0" in path:
        raise ValueError(f"pin_path contains a NUL byte: {path!r}")
    if not path:
        raise ValueError("pin_path must not be empty")
    return path


def _open_pin(path: str) -> Link | None:
    """The link pinned at ``path``; None when nothing is pinned there; PinMismatchError for a non-link."""
    from .link import Link, _kind_from_proc, is_link

    fd = ll.bpf_obj_get(path.encode())
    if fd == -errno.ENOENT:
        return None
    check(fd, f"ensure {path}: bpf_obj_get",
          hint="the pin path must be on a bpffs mount (mount -t bpf bpf /sys/fs/bpf)")
    if not is_link(fd):  # the kernel's answer, not /proc's
        kind = _kind_from_proc(fd) or "BPF object"
        os.close(fd)
        raise PinMismatchError(path, f"a {kind.removeprefix('bpf-')}, not a link")
    return Link(fd)


def plan(pin_path: str | os.PathLike[str], prog: FdLike, target: Any, attach_type: AttachType | int | str) -> Plan:
    """What ``ensure`` would do now, changing nothing (its dry run)."""
    from .resolve import attach_type as _attach_type

    path = _path(pin_path)
    at = _attach_type(attach_type)
    new = prog_identity(as_fd(prog, "prog"))
    key = _target_key(target, at)
    link = _open_pin(path)
    if link is None:
        return Plan(path, CREATED, f"create a {at.name.lower()} link running prog {new.id} and pin it",
                    new_prog_id=new.id)
    with link:
        info = link.info()
    why = _mismatch(info, at, key)
    if why is not None:
        return Plan(path, "conflict", f"the pin holds {why}", link_id=info.id, old_prog_id=info.prog_id)
    old = prog_identity_by_id(info.prog_id)
    if old.same_program(new):
        return Plan(path, UNCHANGED, f"link {info.id} already runs prog {old.id} ({old.name or '?'} tag "
                                     f"{old.tag})", info.id, old.id, new.id)
    return Plan(path, UPDATED, f"swap link {info.id} from prog {old.id} ({old.name or '?'} tag {old.tag}) to "
                               f"prog {new.id} ({new.name or '?'} tag {new.tag})", info.id, old.id, new.id)


def ensure(pin_path: str | os.PathLike[str], prog: FdLike, target: Any, attach_type: AttachType | int | str,
           opts: Any = None) -> tuple[Link, str]:
    """Make the link pinned at ``pin_path`` run ``prog`` at (``target``, ``attach_type``): see the module doc.

    Returns ``(link, "created" | "updated" | "unchanged")``; the Link is a new fd the caller closes (the pin
    keeps the link alive). ``opts`` apply only when the link is created. Raises ``PinMismatchError`` when the
    pin holds something else and ``EnsureConflictError`` when another process won a race (nothing changed
    by us in either case).
    """
    from .create import link_create
    from .resolve import attach_type as _attach_type

    path = _path(pin_path)
    at = _attach_type(attach_type)
    prog_fd = as_fd(prog, "prog")
    new = prog_identity(prog_fd)
    key = _target_key(target, at)
    link = _open_pin(path)
    if link is None:
        _step("read")  # decided: create
        created = link_create(prog, target, at, opts)
        _step("created")
        ret = ll.bpf_obj_pin(created.fd, path.encode())
        if ret == -errno.EEXIST:
            created.close()  # the winner's link stays; ours goes before anyone sees it pinned
            winner = _winner(path)
            raise EnsureConflictError(errno.EEXIST, path, f"another process pinned {winner} first",
                                      *_winner_ids(path))
        if ret < 0:
            created.close()
            check(ret, f"ensure {path}: pin", hint="the pin path must be on a bpffs mount and its directory exist")
        created._pinned = path
        _step("pinned")
        return created, CREATED
    try:
        info = link.info()
        why = _mismatch(info, at, key)
        if why is not None:
            raise PinMismatchError(path, why)
        link._pinned = path
        if info.prog_id == new.id:
            return link, UNCHANGED
        try:
            old_fd = check(ll.bpf_prog_get_fd_by_id(info.prog_id), f"prog_get_fd_by_id({info.prog_id})")
        except FileNotFoundError:  # swapped out and freed since we read it
            raise EnsureConflictError(errno.ENOENT, path, f"link {info.id}'s program {info.prog_id} was "
                                      "replaced meanwhile", info.id, _prog_id_of(link)) from None
        try:
            old = prog_identity(old_fd)
            if old.same_program(new):
                return link, UNCHANGED
            _step("read")  # decided: swap old for new
            opts_u = ll.new_link_update_opts()
            opts_u.flags = ll.BPF_F_REPLACE
            opts_u.old_prog_fd = old_fd
            ret = ll.bpf_link_update(link.fd, prog_fd, opts_u)
        finally:
            os.close(old_fd)
        if ret == -errno.EPERM:
            now = _prog_id_of(link)
            raise EnsureConflictError(errno.EPERM, path, f"link {info.id} no longer runs prog {info.prog_id} "
                                      f"(another process swapped it to prog {now} first)", info.id, now)
        if ret < 0:
            raise error(-ret, f"ensure {path}: update link {info.id} from prog {info.prog_id} to {new.id}",
                        family=family_of(at),
                        hint="this link kind cannot swap programs (BPF_LINK_UPDATE)" if ret == -errno.EOPNOTSUPP
                        else None)
        _step("updated")
        return link, UPDATED
    except BaseException:
        link.close()
        raise


def _prog_id_of(link: Link) -> int | None:
    try:
        return link.prog_id
    except OSError:
        return None


def _winner_ids(path: str) -> tuple[int | None, int | None]:
    try:
        link = _open_pin(path)
    except OSError:
        return None, None
    if link is None:
        return None, None
    with link:
        return link.id, _prog_id_of(link)


def _winner(path: str) -> str:
    link_id, prog_id = _winner_ids(path)
    return "something" if link_id is None else f"link {link_id} (prog {prog_id})"


# --- a group: one bpffs directory per agent -----------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """One link of an agent's group: pinned at ``<directory>/<name>``."""

    name: str
    prog: FdLike
    target: Any
    attach_type: AttachType | int | str
    opts: Any = None


@dataclass(frozen=True)
class Change:
    """What ``ensure_group`` did (or, in a dry run, would do) for one pin."""

    name: str
    path: str
    action: str  # created / updated / unchanged / removed / conflict
    detail: str


def ensure_group(directory: str | os.PathLike[str], wants: Iterable[Want] | Mapping[str, Any], *,
                 dry_run: bool = False, prune: bool = False) -> list[Change]:
    """``ensure`` every link of an agent, each pinned at ``directory/name``.

    Everything is checked first: if any pin holds something else, ``PinMismatchError`` is raised before
    anything changes. ``prune=True`` also unpins links in the directory that are not wanted. ``dry_run=True``
    returns what would change (``"conflict"`` rows included) and changes nothing.

    >>> # not run as a doctest: needs a loaded program `prog` and a cgroup fd `cg`
    >>> ensure_group("/sys/fs/bpf/agent", [Want("egress", prog, cg, "cgroup_inet_egress")],
    ...              dry_run=True)  # doctest: +SKIP
    [Change(name='egress', path='/sys/fs/bpf/agent/egress', action='created', detail='create a ...')]
    """
    base = _path(directory)
    items = ([Want(name, *(v if isinstance(v, tuple) else (v,))) for name, v in wants.items()]
             if isinstance(wants, Mapping) else list(wants))
    names = [w.name for w in items]
    for w in items:
        if not w.name or "/" in w.name or w.name in (".", ".."):
            raise ValueError(f"a group member's name must be one path component, got {w.name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate names in the group: {sorted(n for n in names if names.count(n) > 1)}")
    exists = os.path.isdir(base)
    changes: list[Change] = []
    for w in items:
        path = os.path.join(base, w.name)
        if not exists:
            changes.append(Change(w.name, path, CREATED, f"create {base} and a {w.name} link"))
            continue
        p = plan(path, w.prog, w.target, w.attach_type)
        changes.append(Change(w.name, path, p.action, p.detail))
    stale = sorted(set(os.listdir(base)) - set(names)) if exists and prune else []
    for name in stale:
        changes.append(Change(name, os.path.join(base, name), "removed", "unpin (not in the group)"))
    conflicts = [c for c in changes if c.action == "conflict"]
    if dry_run:
        return changes
    if conflicts:
        raise PinMismatchError(base, "; ".join(f"{c.name}: {c.detail}" for c in conflicts))
    if not exists:
        os.makedirs(base, exist_ok=True)
    done: list[Change] = []
    for w in items:
        link, what = ensure(os.path.join(base, w.name), w.prog, w.target, w.attach_type, w.opts)
        with link:
            done.append(Change(w.name, os.path.join(base, w.name), what, f"link {link.id} runs prog {link.prog_id}"))
    for name in stale:
        path = os.path.join(base, name)
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            done.append(Change(name, path, "conflict", "a directory: left alone"))
            continue
        # detach first: a kernel may free an unpinned link only later (5.10 drops the pin's reference from an RCU
        # callback), and "removed" must mean the hook no longer runs the program; not a link, or a kind that cannot
        # detach: the kernel refuses and unpinning alone releases it
        fd = ll.bpf_obj_get(os.fsencode(path))
        if fd >= 0:
            try:
                ll.bpf_link_detach(fd)
            finally:
                os.close(fd)
        os.unlink(path)
        done.append(Change(name, path, "removed", "detached and unpinned"))
    return done


__all__ = ["CREATED", "UNCHANGED", "UPDATED", "Change", "EnsureConflictError", "PinMismatchError", "Plan",
           "ProgIdentity", "Want", "ensure", "ensure_group", "plan", "prog_identity"]
