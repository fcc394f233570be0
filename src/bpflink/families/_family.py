"""The record every link family is described by: one ``Family`` per module in ``bpflink.families``.

Everything that depends on the family of an attach type (what ``target`` means, the opts builder, the minimum
kernel, the capabilities, the error hints, the info decoder, the CLI names) reads it from here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ..enums import AttachType


class TargetKind(enum.Enum):
    """What ``link_create``/``query`` take as ``target`` for a family."""

    #: nothing: the attach point is in the program (load time) or the opts; ``None`` (0)
    NONE = "none"
    #: a cgroup v2 directory: an open fd or its path
    CGROUP = "cgroup"
    #: a network namespace: an open fd or its path (e.g. ``/run/netns/<name>``)
    NETNS = "netns"
    #: a network device: its ifindex or its name
    IFINDEX = "ifindex"
    #: a perf event fd (``perf_event_open``)
    PERF_EVENT = "perf_event"
    #: a map fd (sockmap/sockhash)
    MAP = "map"
    #: a program fd (the program whose function a freplace program replaces)
    PROG = "prog"
    #: an fd whose kind the kernel checks (families bpflink knows nothing special about)
    FD = "fd"

    @property
    def takes_path(self) -> bool:
        """The target may be given as a path, which is opened for the call."""
        return self in (TargetKind.CGROUP, TargetKind.NETNS)

    @property
    def takes_device(self) -> bool:
        """The target may be given as a network device name."""
        return self is TargetKind.IFINDEX


#: ``(operation, errno) -> hint``; the operation as ``bpflink.errors.operation_of`` names it (``"link_create"``)
Hints = Mapping[tuple[str, int], str]
#: ``decoder(fd, info, base, kinds) -> LinkInfo`` for a first-call ``struct bpf_link_info``; ``kinds`` is
#: ``bpflink.info`` (its LinkInfo classes and two-call helpers), handed over so that no family imports it
InfoDecoder = Callable[[int, Any, "dict[str, Any]", ModuleType], Any]


@dataclass(frozen=True)
class Family:
    """Everything bpflink knows about one link family.

    ``attach_types``: the attach types whose links are of this family (``family_of`` answers from them).
    ``any_attach_type``: the kernel ignores the attach type (freplace), so the opts builder accepts any.
    ``target``: what ``target`` means (``TargetKind``). ``feature``: the ``bpflink.features`` name, which
    holds the first kernel with links of this family (``min_kernel``) and the config options they need.
    ``caps``: capabilities besides ``CAP_BPF`` that loading its programs needs (the EPERM hint names them; a
    process handed a program fd may create some links with less: README, Security). ``hints``: per
    ``(operation, errno)``. ``link_types``: the ``LinkType`` names its links report; ``info``: ``LinkType``
    name -> decoder of a ``struct bpf_link_info`` of that type (one family owns each link type's decoder).
    ``aliases``: CLI names (libbpf's ``SEC()`` words) for single attach types. ``opts``: its builder classes
    in ``bpflink.opts``. ``probe``: how ``bpflink.probe`` tries this family (None: the generic trial).
    ``mechanism``: the kernel path a link takes, and ``quirks``: facts measured or documented upstream that are
    known to bite (``bpflink explain`` shows both).

    >>> from bpflink.families import by_name
    >>> by_name("tcx").target, by_name("tcx").min_kernel
    (<TargetKind.IFINDEX: 'ifindex'>, (6, 6))
    """

    name: str
    attach_types: tuple[AttachType, ...]
    target: TargetKind
    feature: str | None = None
    caps: tuple[str, ...] = ()
    hints: Hints = field(default_factory=dict, hash=False, compare=False)
    link_types: tuple[str, ...] = ()
    info: Mapping[str, InfoDecoder] = field(default_factory=dict, hash=False, compare=False)
    aliases: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    opts: tuple[Callable[..., Any], ...] = ()  # the builder classes
    mechanism: str = "BPF_LINK_CREATE"
    quirks: tuple[str, ...] = ()
    any_attach_type: bool = False
    probe: Any = field(default=None, hash=False, compare=False)

    @property
    def min_kernel(self) -> tuple[int, int] | None:
        """The first kernel with links of this family: ``bpflink.features`` keeps it with the feature."""
        from ..features import FEATURES  # lazy: it reads kernel configs with gzip, platform...

        feature = FEATURES.get(self.feature) if self.feature is not None else None
        return None if feature is None else feature.min_kernel

    def hint(self, op: str, err: int) -> str | None:
        """This family's hint for ``err`` from ``op``: its own, else the capability list for EPERM on create."""
        own = self.hints.get((op, err))
        if own is not None:
            return own
        if op == "link_create" and err == 1 and self.caps:  # EPERM
            return f"creating this link needs {' and '.join(self.caps)} besides CAP_BPF (or root)"
        return None

    def __repr__(self) -> str:
        return f"<Family {self.name}: {len(self.attach_types)} attach types, target {self.target.value}>"


def attach_types(*names: str) -> tuple[AttachType, ...]:
    """The members named (every name must exist in ``AttachType``; unavailable ones are kept too)."""
    return tuple(AttachType[n] for n in names)
