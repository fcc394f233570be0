"""Attach a program as its section name (``SEC("...")``) says, with libbpf's section conventions.

The program type and expected attach type come from libbpf (``bpf_program__type``/``expected_attach_type``,
or ``libbpf_prog_type_by_name`` for a section given by hand); this module only reads the *arguments* a section
carries (tracepoint name, function, binary, pattern) and picks the attach call. Sections that need something
the section cannot say (a cgroup, a device, a network namespace, a map, a perf event) take ``target=``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import lowlevel as ll
from .. import opts as _opts
from .._fd import FdLike, as_fd
from ..create import link_create
from ..enums import AttachType, ProgType
from ..errors import NotSupportedError
from ..families import family_of
from ..link import Link
from . import tracing, uprobe
from .legacy import check_mode, prog_attach
from .perf import perf_sample

#: what target= means, per family of the program's expected attach type
_TARGETS = {
    "cgroup": "a cgroup v2 directory (path or fd), e.g. target='/sys/fs/cgroup/app'",
    "xdp": "a network device (name or ifindex), e.g. target='eth0'",
    "tcx": "a network device (name or ifindex), e.g. target='eth0'",
    "netkit": "a netkit device (name or ifindex)",
    "netns": "a network namespace (path or fd), e.g. target='/proc/self/ns/net'",
    "sockmap": "a sockmap or sockhash map (Map or fd)",
    "perf_event": "a perf event (bpflink.perf.PerfEvent or fd), or event='cpu-clock' with freq=/period= to "
                  "sample on every CPU",
}


@dataclass(frozen=True)
class ProgSpec:
    """What attaching needs to know about a loaded program."""

    fd: int
    name: str
    section: str
    prog_type: ProgType
    attach_type: AttachType | None
    #: the ``Object`` it came from (None for a bare Program/fd): USDT attach needs the object's spec maps
    owner: Any = None

    @property
    def kind(self) -> str:
        return self.section.split("/", 1)[0]

    @property
    def arg(self) -> str:
        return self.section.split("/", 1)[1] if "/" in self.section else ""

    def where(self) -> str:
        return f"program {self.name!r} (SEC(\"{self.section}\"))"


def section_types(section: str) -> tuple[ProgType, AttachType | None]:
    """(program type, expected attach type) libbpf derives from a section name."""
    pt = ll.ffi.new("enum bpf_prog_type *")
    at = ll.ffi.new("enum bpf_attach_type *")
    if ll.libbpf_prog_type_by_name(section.encode(), pt, at) != 0:
        raise ValueError(f"libbpf knows no section {section!r}")
    try:
        eat: AttachType | None = AttachType(int(at[0]))
    except ValueError:
        eat = None
    return ProgType(int(pt[0])), eat


def spec_of(prog: FdLike, section: str | None = None) -> ProgSpec:
    """A ``ProgSpec`` from a ``Program`` (its ``section_name``, type, expected attach type) or an fd + section."""
    sec = section if section is not None else getattr(prog, "section_name", None)
    if not sec:
        raise ValueError("the program carries no section name (load it from an object with Object.program(), "
                         "or pass section='tracepoint/sched/sched_switch' and the like)")
    fd = as_fd(prog, "prog")
    ptype = getattr(prog, "prog_type", None)
    eat = getattr(prog, "expected_attach_type", None)
    if section is not None or ptype in (None, ProgType.UNSPEC):
        ptype, eat = section_types(sec)
    return ProgSpec(fd, getattr(prog, "name", "") or f"fd {fd}", sec, ProgType(ptype), eat)


def _need(spec: ProgSpec, what: str) -> ValueError:
    return ValueError(f"{spec.where()} cannot be attached automatically: pass {what}")


def _arg(spec: ProgSpec, target: Any, what: str) -> str:
    """The section's argument, or target= when the section has none (``SEC("kprobe")``)."""
    if spec.arg:
        if target is not None:
            raise ValueError(f"{spec.where()} names its own target; target={target!r} is not used")
        return spec.arg
    if not isinstance(target, str) or not target:
        raise _need(spec, f"target={what}")
    return target


def _tracepoint(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    name = _arg(spec, target, "'category:name' (e.g. 'sched:sched_switch')")
    return tracing.tracepoint(spec.fd, name.replace("/", ":", 1), cookie=o.pop("cookie", 0),
                              mode=o.pop("mode", "auto"))


def _raw_tp(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    name = _arg(spec, target, "the raw tracepoint name (e.g. 'sched_switch')")
    return tracing.raw_tracepoint(spec.fd, name, cookie=o.pop("cookie", 0))


def _kprobe(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    func, off = tracing.parse_func_offset(_arg(spec, target, "'FUNC' or 'FUNC+OFFSET'"))
    ret = spec.kind == "kretprobe"
    return tracing.kprobe(spec.fd, func, off + o.pop("offset", 0), cookie=o.pop("cookie", 0), retprobe=ret,
                          maxactive=o.pop("maxactive", 0), mode=o.pop("mode", "auto"))


def _kprobe_multi(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    patterns = spec.arg or target
    if not patterns:
        raise _need(spec, "target= a glob or list of kernel function names")
    out = tracing.kprobe_multi(spec.fd, patterns, retprobe=spec.kind == "kretprobe.multi",
                               session=spec.kind == "kprobe.session", cookies=o.pop("cookies", None),
                               unique_match=o.pop("unique_match", False), best_effort=o.pop("best_effort", False),
                               mode=o.pop("mode", "auto"))
    if isinstance(out, tuple):  # best_effort: the report rides on the link
        link, report = out
        link.report = report
        return link  # type: ignore[no-any-return]
    return out  # type: ignore[no-any-return]


def _ksyscall(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    name = _arg(spec, target, "the syscall name (e.g. 'openat')")
    return tracing.ksyscall(spec.fd, name, cookie=o.pop("cookie", 0), retprobe=spec.kind == "kretsyscall",
                            mode=o.pop("mode", "auto"))


def _binary_func(spec: ProgSpec, target: Any, o: dict[str, Any]) -> tuple[str | None, str | None, int]:
    """BINARY:FUNC[+OFF] from the section, or from binary=/func=/offset= options or target='BINARY:FUNC'."""
    text = spec.arg or (target if isinstance(target, str) else "")
    binary, func, off = o.pop("binary", None), o.pop("func", None), o.pop("offset", 0)
    if text:
        if ":" not in text:
            raise ValueError(f"{spec.where()}: expected BINARY:FUNCTION[+OFFSET], got {text!r}")
        binary, _, func = text.rpartition(":")
        if func and "+" in func:
            func, extra = tracing.parse_func_offset(func)
            off += extra
        elif func and (func.isdigit() or func.startswith("0x")):
            off, func = int(func, 0), None
    if binary is None and not (func and "@" in func):
        raise _need(spec, "target='BINARY:FUNCTION' (a path or library name such as 'libc.so.6:malloc'), "
                    "or binary=/func=")
    return binary, func or None, off


def _uprobe(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    binary, func, off = _binary_func(spec, target, o)
    return uprobe.uprobe(spec.fd, binary, func, offset=off, pid=o.pop("pid", None), cookie=o.pop("cookie", 0),
                         ref_ctr_offset=o.pop("ref_ctr_offset", 0), retprobe=spec.kind.startswith("uretprobe"),
                         mode=o.pop("mode", "auto"))


def _uprobe_multi(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    binary, pattern, _off = _binary_func(spec, target, o)
    if binary is None or pattern is None:
        raise _need(spec, "target='BINARY:PATTERN'")
    return uprobe.uprobe_multi(spec.fd, binary, pattern, pid=o.pop("pid", None), cookies=o.pop("cookies", None),
                               retprobe=spec.kind.startswith("uretprobe"),
                               session=spec.kind.startswith("uprobe.session"),
                               unique_match=o.pop("unique_match", False), mode=o.pop("mode", "auto"))


def _usdt(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    """``usdt/BINARY:PROVIDER:NAME`` through ``bpflink.usdt``, which fills the object's spec maps: the program is
    taken from its Object with those maps, and the link keeps it (and so the maps) for as long as it lives."""
    from .. import usdt

    if spec.owner is None:
        raise ValueError(f"{spec.where()}: a USDT program needs its object's spec maps: attach it through "
                         "Object.attach() or bpflink.attach_usdt(prog, binary, provider, name)")
    if target is not None:
        raise TypeError(f"{spec.where()}: a usdt section names its binary and probe; it takes no target= "
                        "(pid= limits it to one process)")
    prog = spec.owner.program(spec.name)
    try:
        link = usdt.attach_section(prog, spec.section, pid=o.pop("pid", None), cookie=o.pop("cookie", 0))
        if link is None:
            raise ValueError(f"{spec.where()}: a bare SEC(\"usdt\") names no probe: use "
                             "bpflink.attach_usdt(prog, binary, provider, name)")
    except BaseException:
        prog.close()
        raise
    link._program = prog  # the spec maps the BPF side reads stay open while the link lives
    return link


def _iter(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    opts = o.pop("opts", None) or (target if isinstance(target, _opts.Iter) else None)
    if opts is None and o:
        opts = _opts.Iter(**{k: o.pop(k) for k in list(o)})
    return link_create(spec.fd, None, AttachType.TRACE_ITER, opts)


def _tracing(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    cookie = o.pop("cookie", 0)
    if spec.prog_type == ProgType.EXT or spec.attach_type in (None, AttachType.TRACE_RAW_TP):
        return tracing.raw_tracepoint(spec.fd, None, cookie=cookie)  # tp_btf and freplace: RAW_TRACEPOINT_OPEN
    try:
        return link_create(spec.fd, None, spec.attach_type, _opts.Tracing(cookie=cookie) if cookie else None)
    except NotSupportedError:
        if cookie:  # fentry/fexit/lsm cookies need the 5.19 link
            raise
        # before 5.19 LINK_CREATE knows no fentry/fexit/fmod_ret/lsm: RAW_TRACEPOINT_OPEN (a kernel link too)
        return tracing.raw_tracepoint(spec.fd, None)


def _perf_event(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    if target is None:
        if "event" in o or "freq" in o or "period" in o:
            return perf_sample(spec.fd, o.pop("event", "cpu-clock"), freq=o.pop("freq", None),
                               period=o.pop("period", None), pid=o.pop("pid", -1), cpus=o.pop("cpus", None),
                               cookie=o.pop("cookie", 0), mode=o.pop("mode", "auto"))
        raise _need(spec, f"target= {_TARGETS['perf_event']}")
    cookie = o.pop("cookie", 0)
    return link_create(spec.fd, target, AttachType.PERF_EVENT, _opts.PerfEvent(cookie=cookie) if cookie else None)


def _struct_ops(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    raise ValueError(f"{spec.where()} is a struct_ops callback: it is attached through its struct_ops map "
                     "(SEC(\".struct_ops.link\")): bpflink.struct_ops.write_value(map, ...) then "
                     "link_create(map, None, AttachType.STRUCT_OPS)")


_KINDS: dict[str, Callable[[ProgSpec, Any, dict[str, Any]], Link]] = {
    **dict.fromkeys(("tracepoint", "tp"), _tracepoint),
    **dict.fromkeys(("raw_tracepoint", "raw_tp", "raw_tracepoint.w", "raw_tp.w"), _raw_tp),
    **dict.fromkeys(("kprobe", "kretprobe"), _kprobe),
    **dict.fromkeys(("kprobe.multi", "kretprobe.multi", "kprobe.session"), _kprobe_multi),
    **dict.fromkeys(("ksyscall", "kretsyscall"), _ksyscall),
    **dict.fromkeys(("uprobe", "uretprobe", "uprobe.s", "uretprobe.s"), _uprobe),
    **dict.fromkeys(("uprobe.multi", "uretprobe.multi", "uprobe.multi.s", "uretprobe.multi.s", "uprobe.session",
                     "uprobe.session.s"), _uprobe_multi),
    "usdt": _usdt,
    **dict.fromkeys(("iter", "iter.s"), _iter),
    **dict.fromkeys(("tp_btf", "fentry", "fexit", "fmod_ret", "fsession", "fentry.s", "fexit.s", "fmod_ret.s",
                     "fsession.s", "lsm", "lsm.s", "freplace"), _tracing),
    "perf_event": _perf_event,
    **dict.fromkeys(("struct_ops", "struct_ops.s"), _struct_ops),
}


def auto_attachable(spec: ProgSpec) -> bool:
    """Whether the section alone says where to attach (no ``target=`` needed)."""
    kind = spec.kind
    if kind in ("struct_ops", "struct_ops.s", "perf_event"):
        return False
    if kind in _KINDS:
        return bool(spec.arg) or kind in ("iter", "iter.s", "tp_btf", "fentry", "fexit", "fmod_ret", "fsession",
                                          "lsm", "lsm.s", "freplace", "fentry.s", "fexit.s", "fmod_ret.s",
                                          "fsession.s")
    return False  # cgroup, xdp, tcx, netkit, netns, sockmap, netfilter sections need target=/opts=


def attach_program(prog: FdLike | ProgSpec, target: Any = None, *, section: str | None = None,
                   **options: Any) -> Link:
    """Attach ``prog`` as its section name says. ``target``: where sections that cannot say it attach (or the
    argument of a bare section: ``SEC("kprobe")`` + ``target="do_nanosleep"``). ``options``: ``cookie``,
    ``pid``, ``offset``, ``maxactive``, ``ref_ctr_offset``, ``cookies``, ``unique_match``, ``best_effort``,
    ``mode`` (``"auto"``/``"link"``/``"legacy"``: tracepoint, kprobe, uprobe and multi-probe sections),
    ``binary``/``func`` (uprobes), ``event``/``freq``/``period``/``cpus`` (perf_event sampling), and ``opts``
    (a ``bpflink.opts`` builder for link_create-based sections).

    ``ValueError`` says what to pass when the section cannot be attached as it is.
    """
    spec = prog if isinstance(prog, ProgSpec) else spec_of(prog, section)
    o = dict(options)
    handler = _KINDS.get(spec.kind, _generic)
    link = handler(spec, target, o)
    if o:
        link.close()
        raise TypeError(f"{spec.where()}: options {sorted(o)} do not apply to this section")
    return link


def _generic(spec: ProgSpec, target: Any, o: dict[str, Any]) -> Link:
    at = spec.attach_type
    # libbpf leaves expected_attach_type 0 (CGROUP_INET_INGRESS) for sections without one ("tc", "socket")
    if at is None or (int(at) == 0 and spec.prog_type != ProgType.CGROUP_SKB):
        hint = {ProgType.SCHED_CLS: "use SEC(\"tcx/ingress\") or SEC(\"tcx/egress\") for a link, or "
                                    "link_create(prog, dev, AttachType.TCX_INGRESS)",
                ProgType.SOCKET_FILTER: "socket filters attach to a socket (SO_ATTACH_BPF), not by link"}
        raise ValueError(f"{spec.where()} has no link attach type libbpf knows: "
                         f"{hint.get(spec.prog_type, 'use link_create() with an explicit attach type')}")
    family = family_of(at)
    opts = o.pop("opts", None)
    if family == "netfilter":
        if opts is None:
            raise _need(spec, "opts=bpflink.opts.Netfilter(pf=..., hooknum=..., priority=...)")
        return link_create(spec.fd, None, at, opts)
    if target is None and family in _TARGETS:
        raise _need(spec, f"target= {_TARGETS[family]}")
    if target is None and (family == "cgroup" or at.name.startswith("CGROUP_")):
        raise _need(spec, f"target= {_TARGETS['cgroup']}")
    if isinstance(target, os.PathLike):
        target = os.fspath(target)
    is_cgroup = family == "cgroup" or at.name.startswith("CGROUP_")
    if family == "xdp":  # before XDP links (5.9): rtnetlink, as libbpf's bpf_xdp_attach
        from .netlink import _flags_of, xdp_netlink

        mode = check_mode(o.pop("mode", "auto"))
        if mode == "legacy":
            return xdp_netlink(spec.fd, target, _flags_of(opts))
        try:
            return link_create(spec.fd, target, at, opts)
        except NotSupportedError:
            if mode == "link":
                raise
            return xdp_netlink(spec.fd, target, _flags_of(opts))
    mode = check_mode(o.pop("mode", "auto")) if is_cgroup else "link"
    if mode == "legacy":
        if opts is not None:
            raise TypeError(f"{spec.where()}: opts= does not apply to mode='legacy' (BPF_PROG_ATTACH)")
        return prog_attach(spec.fd, target, at)
    try:
        return link_create(spec.fd, target, at, opts)
    except NotSupportedError:
        if mode == "link" or opts is not None:
            raise
        return prog_attach(spec.fd, target, at)  # before cgroup links (5.7)


__all__ = ["ProgSpec", "attach_all", "attach_program", "auto_attachable", "section_types", "spec_of"]


def attach_all(specs: list[ProgSpec], targets: Any = None, *, skip_untargeted: bool = False) -> dict[str, Link]:
    """Attach every program of ``specs`` all-or-nothing (see ``Object.attach_all``)."""
    from .group import LinkGroup

    given = dict(targets or {})
    unknown = set(given) - {s.name for s in specs}
    if unknown:
        raise KeyError(f"targets names no loaded program: {sorted(unknown)}")
    makers: dict[str, Callable[[], Link]] = {}
    missing = []
    for spec in specs:
        if spec.kind in ("struct_ops", "struct_ops.s"):
            continue
        if spec.name in given:
            t = given[spec.name]
            if isinstance(t, dict):  # {"target": ..., **options}
                opts = dict(t)
                makers[spec.name] = functools.partial(attach_program, spec, opts.pop("target", None), **opts)
            else:
                makers[spec.name] = functools.partial(attach_program, spec, t)
        elif auto_attachable(spec):
            makers[spec.name] = functools.partial(attach_program, spec)
        elif not skip_untargeted:
            missing.append(spec)
    if missing:
        raise ValueError("attach_all: these programs need a target: " + "; ".join(
            f"{s.where()}: targets={{{s.name!r}: ...}}" for s in missing)
            + " (or skip_untargeted=True)")
    group = LinkGroup.attach(makers)
    return group.as_dict()
