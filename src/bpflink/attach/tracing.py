"""Kernel tracing attach helpers: tracepoints, raw tracepoints, kprobes, syscalls, kprobe_multi with a doctor.

Every helper returns a ``bpflink.Link``; one built on a perf event owns it (``link.perf_event``; closing the
link closes it).
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .. import kernel, perf
from .. import lowlevel as ll
from .. import opts as _opts
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

    @classmethod
    def _fast(cls, name: str, status: str, reason: str, symbols: tuple[str, ...],
              addresses: tuple[int, ...]) -> ProbeVerdict:
        # a frozen dataclass's __init__ sets each field through object.__setattr__: ~3x this, for 10k+ names
        v = object.__new__(cls)
        v.__dict__.update(name=name, status=status, reason=reason, symbols=symbols, addresses=addresses)
        return v


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


def _read(path: Any, *, required: bool = False) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except PermissionError as exc:
        if required:
            raise PermissionError(exc.errno, f"{path} is not readable ({exc.strerror}): kprobe_multi names cannot "
                                  "be resolved (root, and a kernel not locked down, are needed)") from None
        return ""
    except OSError:
        return ""


def _lines(path: Any, *, required: bool = False) -> list[str]:
    return _read(path, required=required).splitlines()


def glob_regex(pattern: str) -> str:
    """A regex for one name column matching ``pattern`` as ``fnmatch.fnmatchcase`` does (``*``, ``?``,
    ``[seq]``, ``[!seq]``), that never crosses a space or a line end, so it can scan a whole tracefs file."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != r"\S*":
                out.append(r"\S*")
        elif c == "?":
            out.append(r"\S")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(re.escape(c))
                continue
            body = pattern[i:j].replace("\\", "\\\\")
            i = j + 1
            if body.startswith("!"):
                out.append("[^" + body[1:].replace("[", "\\[") + "\\s]")
            else:
                if body.startswith("^"):
                    body = "\\" + body
                out.append("(?=\\S)[" + body.replace("[", "\\[") + "]")
        else:
            out.append(re.escape(c))
    return "".join(out)


class _FtraceFunctions:
    """``available_filter_functions(_addrs)`` read once (tracefs builds these files on every read: ~1 s each
    for 40k functions under QEMU TCG). A glob is matched by one regex scan of the text, in C, collecting the
    matches only; the name table of every function is built only for explicit names (a dict of ~60k entries
    cost more than the rest of a 13k-function attach: ~0.2 s on the host, seconds under TCG)."""

    def __init__(self) -> None:
        tfs = perf.tracefs()
        self.path = tfs / "available_filter_functions_addrs"
        self.text = _read(self.path)  # Linux >= 6.5: the same list with addresses
        self.with_addrs = bool(self.text)
        if not self.text:
            self.path = tfs / "available_filter_functions"
            self.text = _read(self.path, required=True)
        self._table: tuple[dict[str, int], dict[str, list[str]]] | None = None

    def glob(self, pattern: str) -> dict[str, list[str]]:
        """name -> ftrace addresses (hex text; without the addrs file, one ``""`` per copy), sorted by name."""
        addr = r"[0-9a-fA-F]+ " if self.with_addrs else ""
        rx = re.compile(rf"^({addr})(?=\S)({glob_regex(pattern)})(?:[ \t][^\n]*)?$", re.M)
        found: dict[str, list[str]] = {}
        for where, name in rx.findall(self.text):  # tuples built in C
            if name in found:
                found[name].append(where[:-1])
            else:
                found[name] = [where[:-1]]
        return dict(sorted(found.items()))

    def table(self) -> tuple[dict[str, int], dict[str, list[str]]]:
        """(name -> copies, name -> addresses as hex text) for every function."""
        if self._table is None:
            counts: dict[str, int] = {}
            addrs: dict[str, list[str]] = {}
            if self.with_addrs:
                for line in self.text.splitlines():
                    parts = line.split(None, 2)
                    if len(parts) >= 2:
                        addrs.setdefault(parts[1], []).append(parts[0])
                counts = {name: len(where) for name, where in addrs.items()}
            else:
                for line in self.text.splitlines():
                    name = line.split(" ", 1)[0]
                    if name:
                        counts[name] = counts.get(name, 0) + 1
            self._table = counts, addrs
        return self._table


def _parse_blacklist(text: str) -> set[str]:
    # "0xSTART-0xEND\tname" or "...\tname [module]"
    return {parts[1] for parts in (line.split() for line in text.splitlines()) if len(parts) >= 2}


def kprobe_blacklist() -> set[str]:
    """Function names on the kernel's kprobe blacklist (debugfs ``kprobes/blacklist``); empty where the kernel
    has no kprobes or the file cannot be read (not root, lockdown).

    Where debugfs is not mounted, it is mounted for the read only, in a private mount namespace of a child
    (``unshare --mount``): the mount ends with that process and nothing is left behind."""
    for root in (*kernel.mounts("debugfs"), "/sys/kernel/debug"):
        path = os.path.join(root, "kprobes", "blacklist")
        if os.path.exists(path):
            return _parse_blacklist(_read(path))
    if kernel.mounts("debugfs") or not os.path.isdir("/sys/bus/event_source/devices/kprobe") or os.geteuid():
        return set()  # debugfs is mounted without kprobes/, or no kprobes, or no right to mount
    try:
        res = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              "mount -t debugfs debugfs /sys/kernel/debug && cat /sys/kernel/debug/kprobes/blacklist"],
                             capture_output=True, text=True, errors="replace", timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return set()
    return _parse_blacklist(res.stdout) if res.returncode == 0 else set()


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
    ftrace = _FtraceFunctions()
    if not ftrace.text.strip():
        raise FileNotFoundError(f"{ftrace.path} is empty or missing: the kernel has no function tracer "
                                "(CONFIG_FUNCTION_TRACER), kprobe_multi cannot resolve names")
    black = kprobe_blacklist()
    report = KprobeReport()
    kallsyms: set[str] | None = None
    seen: set[str] = set()
    new = ProbeVerdict._fast

    def verdict(name: str, where: list[str], via: str | None = None) -> ProbeVerdict:
        sym = via or name
        if sym in black:
            return new(name, "skipped", "on the kprobe blacklist (kprobes are refused there)", (), ())
        n = len(where)
        if n > 1:
            if ftrace.with_addrs:
                return new(name, "attached", f"duplicate name ({n} functions): attached by address",
                           (sym,) * n, tuple(int(a, 16) for a in where))
            return new(name, "skipped", f"duplicate name ({n} functions) and no "
                       "available_filter_functions_addrs (Linux >= 6.5) to attach them by address", (), ())
        reason = "traceable" if via is None else f"only the compiler variant {via} exists: attached it"
        return new(name, "attached", reason, (sym,), (int(where[0], 16),) if ftrace.with_addrs else ())

    for pat in wanted:
        if any(c in pat for c in "*?["):
            matched = ftrace.glob(pat)
            if unique_match and len(matched) != 1:
                report.verdicts.append(ProbeVerdict(pat, "skipped", f"unique_match: the glob matched {len(matched)}"
                                                    " functions"))
                continue
            if not matched:
                report.verdicts.append(ProbeVerdict(pat, "skipped", "the glob matches no traceable function"))
            out = report.verdicts
            alloc, with_addrs = object.__new__, ftrace.with_addrs
            for n, where in matched.items():
                if n in seen or n in black:
                    continue
                seen.add(n)
                if len(where) == 1:  # the common case inline: ~10k+ names per glob (see ProbeVerdict._fast)
                    pv = alloc(ProbeVerdict)
                    pv.__dict__.update(name=n, status="attached", reason="traceable", symbols=(n,),
                                       addresses=(int(where[0], 16),) if with_addrs else ())
                    out.append(pv)
                else:
                    out.append(verdict(n, where))
            continue
        if pat in seen:
            continue
        seen.add(pat)
        if pat in black:  # whether or not ftrace lists it
            report.verdicts.append(new(pat, "skipped", "on the kprobe blacklist (kprobes are refused there)", (), ()))
            continue
        counts, addrs = ftrace.table()
        if pat in counts:
            report.verdicts.append(verdict(pat, addrs.get(pat) or [""] * counts[pat]))
            continue
        variants = sorted(n for n in counts if n.startswith(pat + ".") and _VARIANT.fullmatch(n[len(pat):]))
        if len(variants) == 1:
            v = variants[0]
            report.verdicts.append(verdict(pat, addrs.get(v) or [""] * counts[v], v))
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
