"""Kernel tracing attach helpers: tracepoints, raw tracepoints, kprobes, syscalls, kprobe_multi with a doctor.

Every helper returns a ``bpflink.Link``; one built on a perf event owns it (``link.perf_event``; closing the
link closes it).
"""

from __future__ import annotations

import fnmatch
import platform
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .. import lowlevel as ll
from .. import opts as _opts
from .. import perf
from .._fd import FdLike, FdOwner, as_fd
from ..create import link_create
from ..enums import AttachType
from ..errors import NotSupportedError, check
from ..link import Link, OwningLink
from ..opts._check import u64
from . import tracefs as _tracefs
from .legacy import attach_ioctl, check_mode, refuse_cookie, single_probes
from .tracefs import local_cpu

_FUNC_OFF = re.compile(r"([A-Za-z_.$][\w.$]*)(?:\+(0x[0-9a-fA-F]+|\d+))?")
_SYSCALL_PREFIXES = {"x86_64": "__x64_", "i386": "__ia32_", "i686": "__ia32_", "aarch64": "__arm64_",
                     "s390x": "__s390x_", "s390": "__s390_", "armv7l": "__arm_", "ppc64le": "",
                     "riscv64": "__riscv_", "loongarch64": ""}


def perf_link(prog: FdLike, event: FdOwner, *, cookie: int = 0, extra: tuple[Any, ...] = (),
              mode: str = "auto") -> Link:
    """Link ``prog`` to perf event ``event`` (``BPF_PERF_EVENT``); the Link owns the event (and ``extra``).

    ``mode``: ``"link"`` a perf_event link (5.15+) or ``NotSupportedError``; ``"legacy"`` (and ``"tracefs"``)
    the perf event ioctl (``PERF_EVENT_IOC_SET_BPF``, a ``LegacyLink``, no cookies); ``"auto"`` the link where
    the kernel has it.
    """
    try:
        mode = check_mode(mode)
        if mode in ("legacy", "tracefs"):
            refuse_cookie(cookie, f"perf event {getattr(event, 'name', '')}")
            return attach_ioctl(prog, event, extra=extra)
        try:
            # the event's int fd: link_create's C fast path takes ints only (~20 us less per attach)
            link = link_create(prog, event.fileno(), AttachType.PERF_EVENT,
                               _opts.PerfEvent(cookie=cookie) if cookie else None)
        except NotSupportedError:
            if mode == "link":
                raise
            refuse_cookie(cookie, f"perf event {getattr(event, 'name', '')} (this kernel has no perf_event links)")
            return attach_ioctl(prog, event, extra=extra)
    except BaseException:
        event.close()
        for r in extra:
            r.close()
        raise
    return OwningLink(link.detach_fd(), attach_type=AttachType.PERF_EVENT, owned=(event, *extra))


def tracepoint(prog: FdLike, name: str, *, cookie: int = 0, mode: str = "auto") -> Link:
    """Attach to tracepoint ``"category:name"`` (``"sched:sched_process_exec"``) through a perf event.

    ``mode``: ``"auto"``, ``"link"`` or ``"legacy"`` (see ``perf_link``).

    >>> # not run as a doctest: needs a loaded tracepoint program `prog`
    >>> link = tracepoint(prog, "syscalls:sys_enter_getpid", cookie=7)  # doctest: +SKIP
    """
    u64("cookie", cookie)
    check_mode(mode)
    return perf_link(prog, perf.open_tracepoint(name, cpu=local_cpu()), cookie=cookie, mode=mode)


def raw_tracepoint(prog: FdLike, name: str | None, *, cookie: int = 0) -> Link:
    """``BPF_RAW_TRACEPOINT_OPEN``: a raw_tp program on tracepoint ``name`` (``"sched_switch"``), or, with
    ``name=None``, a tp_btf/fentry/fexit/freplace program on the target fixed at its load.

    ``cookie`` (read by ``bpf_get_attach_cookie()``) needs kernel >= 6.10.
    """
    fd = as_fd(prog, "prog")
    if name is not None and (not isinstance(name, str) or not name or "\0" in name):
        raise ValueError(f"raw tracepoint name must be a non-empty str without NUL, got {name!r}")
    u64("cookie", cookie)
    o = ll.ffi.new("struct bpf_raw_tp_opts *")
    o.sz = ll.ffi.sizeof("struct bpf_raw_tp_opts")
    cname = None if name is None else ll.ffi.new("char[]", name.encode())
    o.tp_name = ll.NULL if cname is None else cname
    o.cookie = cookie
    ret = ll.bpf_raw_tracepoint_open_opts(fd, o)
    what = f"raw_tracepoint_open({name or 'the program attach target'})"
    check(ret, what, family="tracing", hint=(
        "no such tracepoint, or the program is not a raw_tp program (cookies need Linux >= 6.10)"
        if name is not None else "the program is not a tp_btf/fentry/fexit/fmod_ret/lsm/freplace program"))
    return Link(ret)


def _check_func(func: object) -> str:
    if not isinstance(func, str) or not func or "\0" in func or len(func) > 511:
        raise (TypeError if not isinstance(func, str) else ValueError)(
            f"func must be a kernel function name (non-empty str without NUL), got {func!r}")
    return func


def kprobe(prog: FdLike, func: str, offset: int = 0, *, cookie: int = 0, retprobe: bool = False,
           maxactive: int = 0, mode: str = "auto") -> Link:
    """A kprobe (``retprobe=True``: kretprobe) on kernel function ``func`` + ``offset`` through a perf event.

    ``maxactive``: how many return probes may be pending at once (kretprobes only): made through tracefs
    ``kprobe_events`` as the perf PMU has no field for it; the event is removed when the link closes.
    ``mode``: ``"auto"``, ``"link"`` or ``"legacy"`` (see ``perf_link``); ``"tracefs"``: the probe made through
    tracefs ``kprobe_events`` and attached with the perf event ioctl (libbpf's legacy mode). ``"auto"`` also
    makes the probe through tracefs where the kernel has no kprobe PMU.
    """
    _check_func(func)
    check_mode(mode)
    off = u64("offset", offset)
    u64("cookie", cookie)
    if not isinstance(maxactive, int) or isinstance(maxactive, bool) or not 0 <= maxactive <= 4096:
        raise ValueError(f"maxactive must be an int in 0..4096, got {maxactive!r}")
    if maxactive and not retprobe:
        raise ValueError("maxactive applies to return probes only (retprobe=True)")
    if mode == "tracefs":
        refuse_cookie(cookie, f"kprobe {func} through tracefs")
    if not maxactive and mode != "tracefs":
        try:
            ev = perf.open_kprobe(func, off, retprobe, cpu=local_cpu())
        except NotSupportedError as exc:  # no kprobe PMU: tracefs kprobe_events, where the kernel has them
            if mode == "link":
                raise
            try:
                ev, event = _tracefs.kprobe_event(func, off, retprobe)
            except FileNotFoundError:
                raise exc from None
            return perf_link(prog, ev, cookie=cookie, extra=(event,), mode=mode)
        return perf_link(prog, ev, cookie=cookie, mode=mode)
    ev, event = _tracefs.kprobe_event(func, off, retprobe, maxactive=maxactive)
    return perf_link(prog, ev, cookie=cookie, extra=(event,), mode=mode)


def kretprobe(prog: FdLike, func: str, *, cookie: int = 0, maxactive: int = 0, mode: str = "auto") -> Link:
    """A kretprobe on kernel function ``func`` (see ``kprobe``)."""
    return kprobe(prog, func, 0, cookie=cookie, retprobe=True, maxactive=maxactive, mode=mode)


@lru_cache(maxsize=1)
def syscall_prefix() -> str:
    """The architecture's syscall wrapper prefix (``__x64_`` on x86-64), found by trial as libbpf does: a kprobe
    on ``<prefix>sys_bpf`` opens only where the wrappers exist; ``""`` on kernels without them."""
    prefix = _SYSCALL_PREFIXES.get(platform.machine(), "")
    if not prefix:
        return ""
    try:
        perf.open_kprobe(f"{prefix}sys_bpf").close()
    except OSError:
        return ""
    return prefix


def ksyscall(prog: FdLike, name: str, *, cookie: int = 0, retprobe: bool = False, mode: str = "auto") -> Link:
    """A kprobe on system call ``name`` (``"openat"``) through the architecture's syscall wrapper."""
    if not isinstance(name, str) or not re.fullmatch(r"\w+", name or ""):
        raise ValueError(f"syscall name must be a word like 'openat', got {name!r}")
    return kprobe(prog, f"{syscall_prefix()}sys_{name}", cookie=cookie, retprobe=retprobe, mode=mode)


def parse_func_offset(text: str) -> tuple[str, int]:
    """``"do_sys_open+0x10"`` -> ("do_sys_open", 16)."""
    m = _FUNC_OFF.fullmatch(text)
    if not m:
        raise ValueError(f"expected FUNC or FUNC+OFFSET, got {text!r}")
    return m.group(1), int(m.group(2), 0) if m.group(2) else 0


# --- kprobe_multi and its doctor --------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeVerdict:
    """What ``resolve`` decided for one requested name: ``status`` is ``"attached"`` or ``"skipped"``;
    ``symbols`` what is attached for it (a variant such as ``foo.isra.0``, or several copies by address)."""

    name: str
    status: str
    reason: str
    symbols: tuple[str, ...] = ()
    addresses: tuple[int, ...] = ()


@dataclass
class KprobeReport:
    """Per requested name, what a kprobe_multi attach does with it."""

    verdicts: list[ProbeVerdict] = field(default_factory=list)

    @property
    def attached(self) -> list[str]:
        return [v.name for v in self.verdicts if v.status == "attached"]

    @property
    def skipped(self) -> dict[str, str]:
        return {v.name: v.reason for v in self.verdicts if v.status == "skipped"}

    def __str__(self) -> str:
        return "\n".join(f"{v.name}: {v.status} ({v.reason})" for v in self.verdicts)


def _lines(path: Any, *, required: bool = False) -> list[str]:
    try:
        with open(path, errors="replace") as f:
            return f.read().splitlines()
    except PermissionError as exc:
        if required:
            raise PermissionError(exc.errno, f"{path} is not readable ({exc.strerror}): kprobe_multi names cannot "
                                  "be resolved (root, and a kernel not locked down, are needed)") from None
        return []
    except OSError:
        return []


def _ftrace_tables() -> tuple[dict[str, int], dict[str, list[str]], set[str]]:
    """(name -> copies in available_filter_functions, name -> ftrace addresses (hex text), blacklisted names).

    Where ``available_filter_functions_addrs`` exists (Linux >= 6.5) it is the same list with addresses: read
    once (tracefs builds these files on every read: ~1 s each for 40k functions under QEMU TCG); addresses are
    converted only for the names attached."""
    tfs = perf.tracefs()
    counts: dict[str, int] = {}
    addrs: dict[str, list[str]] = {}
    for line in _lines(tfs / "available_filter_functions_addrs"):  # Linux >= 6.5
        parts = line.split(None, 2)
        if len(parts) >= 2:
            addrs.setdefault(parts[1], []).append(parts[0])
    if addrs:
        counts = {name: len(where) for name, where in addrs.items()}
    else:
        for line in _lines(tfs / "available_filter_functions", required=True):
            name = line.split(" ", 1)[0]
            if name:
                counts[name] = counts.get(name, 0) + 1
    black = set()
    for line in _lines("/sys/kernel/debug/kprobes/blacklist"):
        parts = line.split()
        if len(parts) >= 2:
            black.add(parts[-1])
    return counts, addrs, black


def _kallsyms_names() -> set[str]:
    return {p[2] for p in (ln.split() for ln in _lines("/proc/kallsyms")) if len(p) >= 3}


_VARIANT = re.compile(r"\.(isra|constprop|part|cold|localalias|llvm)\.\d+")


def resolve(patterns: str | Iterable[str], *, unique_match: bool = False) -> KprobeReport:
    """The kprobe doctor: for each requested name or glob, whether a kprobe_multi link can attach it and why not.

    Reasons: not in ``available_filter_functions`` (notrace, inlined, or no such function; ``kallsyms`` tells
    which), on the kprobe blacklist, duplicate name (several functions share it: attached by address),
    only a compiler variant exists (``foo.isra.0``, ``.constprop.N``, ``.part.N``: that one is attached).
    A glob expands against ``available_filter_functions`` (blacklisted names are skipped); with
    ``unique_match`` a glob must match exactly one function.
    """
    wanted = [patterns] if isinstance(patterns, str) else list(patterns)
    if not wanted or not all(isinstance(p, str) and p for p in wanted):
        raise ValueError(f"patterns must be non-empty strs, got {patterns!r}")
    counts, addrs, black = _ftrace_tables()
    if not counts:
        raise FileNotFoundError(f"{perf.tracefs() / 'available_filter_functions'} is empty or missing: the "
                                "kernel has no function tracer (CONFIG_FUNCTION_TRACER), kprobe_multi cannot "
                                "resolve names")
    report = KprobeReport()
    kallsyms: set[str] | None = None
    seen: set[str] = set()

    def verdict(name: str, via: str | None = None) -> ProbeVerdict:
        sym = via or name
        if sym in black:
            return ProbeVerdict(name, "skipped", "on the kprobe blacklist (kprobes are refused there)")
        n = counts.get(sym, 0)
        if n > 1:
            where = tuple(int(a, 16) for a in addrs.get(sym, ()))
            if len(where) == n:
                return ProbeVerdict(name, "attached", f"duplicate name ({n} functions): attached by address",
                                    (sym,) * n, where)
            return ProbeVerdict(name, "skipped", f"duplicate name ({n} functions) and no "
                                "available_filter_functions_addrs (Linux >= 6.5) to attach them by address")
        reason = "traceable" if via is None else f"only the compiler variant {via} exists: attached it"
        return ProbeVerdict(name, "attached", reason, (sym,), tuple(int(a, 16) for a in addrs.get(sym, ())))

    for pat in wanted:
        if any(c in pat for c in "*?["):
            match = re.compile(fnmatch.translate(pat)).match  # once, not per name as fnmatchcase would
            names = sorted(n for n in counts if match(n))
            if unique_match and len(names) != 1:
                report.verdicts.append(ProbeVerdict(pat, "skipped", f"unique_match: the glob matched {len(names)}"
                                                    " functions"))
                continue
            if not names:
                report.verdicts.append(ProbeVerdict(pat, "skipped", "the glob matches no traceable function"))
            for n in names:
                if n not in seen and n not in black:
                    seen.add(n)
                    report.verdicts.append(verdict(n))
            continue
        if pat in seen:
            continue
        seen.add(pat)
        if pat in counts:
            report.verdicts.append(verdict(pat))
            continue
        variants = sorted(n for n in counts if n.startswith(pat + ".") and _VARIANT.fullmatch(n[len(pat):]))
        if len(variants) == 1:
            report.verdicts.append(verdict(pat, variants[0]))
            continue
        if kallsyms is None:
            kallsyms = _kallsyms_names()
        if variants:
            reason = f"several compiler variants ({', '.join(variants)}): name one"
        elif pat in kallsyms:
            reason = "not traceable: in kallsyms but not in available_filter_functions (notrace or inlined)"
        else:
            reason = "no such kernel function (not in kallsyms)"
        report.verdicts.append(ProbeVerdict(pat, "skipped", reason))
    return report


def kprobe_multi(prog: FdLike, patterns: str | Sequence[str], *, retprobe: bool = False, session: bool = False,
                 cookies: Sequence[int] | None = None, unique_match: bool = False,
                 best_effort: bool = False, mode: str = "auto") -> Any:
    """One kprobe_multi link on every function ``patterns`` names (globs expand against
    ``available_filter_functions``). Returns the ``Link``; with ``best_effort=True``, ``(link, report)``:
    what can be attached is attached and the ``KprobeReport`` says why the rest was skipped (without it, any
    skipped name is a ``ValueError`` carrying the report, before the syscall).

    ``cookies`` (one per name, explicit names only). ``session=True``: ``TRACE_KPROBE_SESSION``.
    ``mode``: ``"link"`` one kprobe_multi link (5.18+); ``"legacy"`` one single kprobe per function (a
    ``LegacyLink`` of kind ``"single_probes"``: one perf event, and one link or ioctl, per function;
    ``"tracefs"``: each made through tracefs); ``"auto"`` the multi link where the kernel has it.
    """
    check_mode(mode)
    report = resolve(patterns, unique_match=unique_match)
    if report.skipped and not best_effort:
        raise ValueError("kprobe_multi: some names cannot be attached (pass best_effort=True to attach the "
                         "rest):\n" + "\n".join(f"  {k}: {v}" for k, v in report.skipped.items()))
    ok = [v for v in report.verdicts if v.status == "attached"]
    if not ok:
        raise ValueError(f"kprobe_multi: nothing to attach:\n{report}")
    # by address where the kernel lists them (6.5+), as libbpf does: the kernel then skips a name lookup per
    # function, and duplicate names need it anyway
    by_addr = all(len(v.addresses) == len(v.symbols) for v in ok)
    if not by_addr and any(len(v.symbols) > 1 for v in ok):
        raise ValueError("kprobe_multi: a duplicate name needs attaching by address, but some names have no "
                         "address in available_filter_functions_addrs")
    cookie_list: list[int] | None = None
    if cookies is not None:
        if isinstance(patterns, str) or len(cookies) != len(patterns):
            raise ValueError("cookies needs a list of explicit names of the same length")
        per = dict(zip(patterns, cookies))
        cookie_list = [per[v.name] for v in ok for _ in v.symbols]
    at = AttachType.TRACE_KPROBE_SESSION if session else AttachType.TRACE_KPROBE_MULTI
    kw: dict[str, Any] = {"retprobe": retprobe} if not session else {}
    if by_addr:
        built = _opts.KprobeMulti(addrs=[a for v in ok for a in v.addresses], cookies=cookie_list, **kw)
    else:
        built = _opts.KprobeMulti(syms=[v.symbols[0] for v in ok], cookies=cookie_list, **kw)
    link: Link
    if mode in ("legacy", "tracefs"):
        # "legacy" multi = single probes, each a perf_event link where the kernel has them; "tracefs" each made there
        link = _kprobes_single(prog, ok, retprobe=retprobe, session=session, cookies=cookie_list,
                               mode="tracefs" if mode == "tracefs" else "auto")
    else:
        try:
            link = link_create(prog, None, at, built)
        except NotSupportedError:
            if mode == "link" or session:
                raise
            link = _kprobes_single(prog, ok, retprobe=retprobe, session=session, cookies=cookie_list)
    return (link, report) if best_effort else link


def _kprobes_single(prog: FdLike, ok: list[ProbeVerdict], *, retprobe: bool, session: bool,
                    cookies: list[int] | None, mode: str = "auto") -> Link:
    """kprobe_multi as one kprobe per function (kernels before 5.18, or mode="legacy")."""
    if session:
        raise NotSupportedError("kprobe.session as single probes", "a session needs the kprobe_multi link's "
                                "entry/return pairing", min_kernel="6.10")
    if any(len(v.symbols) > 1 for v in ok):
        raise ValueError("kprobe_multi as single probes: duplicate names (attached by address) cannot be "
                         "probed by name: " + ", ".join(v.name for v in ok if len(v.symbols) > 1))
    syms = [v.symbols[0] for v in ok]
    cks = cookies or [0] * len(syms)
    def one(sym: str, ck: int) -> Callable[[], Link]:
        return lambda: kprobe(prog, sym, cookie=ck, retprobe=retprobe, mode=mode)

    return single_probes([one(s, c) for s, c in zip(syms, cks)], [f"kprobe:{s}" for s in syms])


__all__ = ["KprobeReport", "ProbeVerdict", "kprobe", "kprobe_multi", "kretprobe", "ksyscall", "parse_func_offset",
           "perf_link", "raw_tracepoint", "resolve", "syscall_prefix", "tracepoint"]
