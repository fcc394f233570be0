"""``bpflink`` / ``python -m bpflink``: probe the kernel, list, show, pin, unpin, detach links, query hooks.

    bpflink --version
    bpflink probe [--json] [--require tcx,uprobe_multi]
    bpflink list [--json] [--owners]
    bpflink show ID [--json] [--owners]
    bpflink pin ID PATH
    bpflink unpin PATH
    bpflink detach ID [--force]
    bpflink query (--dev IFNAME | --cgroup PATH) --attach tcx_ingress [--json]
    bpflink explain ATTACH_TYPE [--json]
    bpflink usdt list (BINARY | --pid PID [BINARY]) [--json]
    bpflink vm --kernel 6.12 -- CMD

Errors print one line (``bpflink VERB: ENAME: message``) and exit non-zero: 1 for a kernel refusal or when
``probe --require`` finds something missing (it names it), 2 for bad usage. With ``--json`` the error is
also printed as ``{"error": ..., "errno": ...}`` on stdout. ``--debug`` shows the traceback. Writing into a
closed pipe (``bpflink list | head -1``) ends the command quietly, as Unix tools do. ``detach`` refuses (EBUSY,
naming them) while processes other than the command's own ancestors hold the link; ``--force`` detaches it
for every holder (the kernel has no per-holder detach) and names them.

Commands are registered in one table (``command(...)`` below): the same entry feeds a small hand-written
parser, which runs every well-formed command line without importing ``argparse``, and the ``argparse``
parser, which answers ``--help`` and reports malformed ones. Adding a subcommand is one decorated function::

    @command("usdt list", "USDT probes in a binary", arg("binary"), option("--pid", type=int), flag("--json"))
    def cmd_usdt_list(args: Args) -> int: ...
"""

from __future__ import annotations

import os
import sys

# typing, enum, json, argparse, dataclasses: each costs milliseconds at start-up; the verbs an operator runs
# by hand and from scripts (list, show, query) import none of them (bench/cli.py measures it)
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_EINVAL, _ENOENT, _ENODEV, _ENOTDIR, _EPERM, _EBUSY = 22, 2, 19, 20, 1, 16


class UsageError(Exception):
    """Bad names or arguments found after parsing: exit 2 with one line (errno name ``err``)."""

    def __init__(self, message: str, err: int = _EINVAL) -> None:
        super().__init__(message)
        self.errno = err


class CliError(Exception):
    """A failure the CLI words itself (errno ``err``): exit 1."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


class Args:
    """The parsed command line: one attribute per parameter (what ``argparse.Namespace`` holds)."""

    verb: str
    debug: bool

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # only for names never set: tells mypy any attribute may exist
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"Args({self.__dict__!r})"


# --- the command table --------------------------------------------------------------------------------------


class Param:
    """One positional argument, flag or valued option of a command."""

    __slots__ = ("conv", "default", "dest", "group", "help", "kind", "metavar", "names", "required")

    def __init__(self, kind: str, names: tuple[str, ...], *, conv: Callable[[str], Any] | None = None,
                 metavar: str | None = None, help: str | None = None, required: bool = False,
                 group: str | None = None, dest: str | None = None, default: Any = None) -> None:
        self.kind, self.names, self.conv, self.metavar, self.help = kind, names, conv, metavar, help
        self.required, self.group, self.default = required, group, default
        self.dest = dest or names[0].lstrip("-").replace("-", "_")


def arg(name: str, *, type: Callable[[str], Any] | None = None, metavar: str | None = None,
        help: str | None = None) -> Param:
    """A positional argument."""
    return Param("pos", (name,), conv=type, metavar=metavar, help=help)


def flag(*names: str, help: str | None = None) -> Param:
    """A boolean ``--flag``."""
    return Param("flag", names, help=help, default=False)


def option(*names: str, type: Callable[[str], Any] | None = None, metavar: str | None = None,
           help: str | None = None, required: bool = False, group: str | None = None,
           default: Any = None) -> Param:
    """A ``--name VALUE`` option; options sharing a ``group`` are mutually exclusive and one is required."""
    return Param("opt", names, conv=type, metavar=metavar, help=help, required=required, group=group,
                 default=default)


class Command:
    __slots__ = ("func", "help", "name", "params")

    def __init__(self, name: str, func: Callable[[Args], int], help: str, params: tuple[Param, ...]) -> None:
        self.name, self.func, self.help, self.params = name, func, help, params


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, *params: Param) -> Callable[[Callable[[Args], int]], Callable[[Args], int]]:
    """Register a subcommand (``name`` may be two words, e.g. ``"usdt list"``)."""

    def register(func: Callable[[Args], int]) -> Callable[[Args], int]:
        COMMANDS[name] = Command(name, func, help, params)
        return func

    return register


# --- output helpers -----------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last one is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _value(value: Any, total: int | None = None) -> str:
    """A field for the tables; a list as its first four items and how many more (of ``total``, default its length)."""
    if isinstance(value, list):
        shown = ",".join(hex(v) if isinstance(v, int) else str(v) for v in value[:4])
        total = len(value) if total is None else total
        more = f",...(+{total - 4})" if total > 4 else ""
        return f"[{shown}{more}]"
    return str(value)


def _details(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in d.items() if k not in ("id", "type", "prog_id") and v is not None)


_KEYS: dict[str, str] = {}  # a dict key -> its JSON string (keys repeat for every link)


def _ints() -> type:
    from ._rawinfo import Ints

    return Ints


def _json(value: Any, indent: str = "") -> str:
    """``json.dumps(value, indent=2)`` for the JSON types, without importing json (its pure-Python indenting
    encoder is also slower than this for 10,000 links)."""
    from _json import encode_basestring_ascii as enc

    t = type(value)
    if t is int:
        return int.__repr__(value)
    if t is str:
        return str(enc(value))
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    inner = indent + "  "
    if isinstance(value, dict):
        if not value:
            return "{}"
        parts = []
        for k, v in value.items():
            key = _KEYS.get(k)
            if key is None:
                key = _KEYS[k] = f"{enc(str(k))}: "
            tv = type(v)
            parts.append(inner + key + (int.__repr__(v) if tv is int else str(enc(v)) if tv is str
                                        else "null" if v is None else _json(v, inner)))
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if type(value) is _ints() or all(type(v) is int for v in value):
            # offsets, addresses, cookies: the list's C repr, its separators replaced (no call per element)
            return "[\n" + inner + list.__repr__(value)[1:-1].replace(", ", ",\n" + inner) + "\n" + indent + "]"
        return "[\n" + ",\n".join(inner + _json(v, inner) for v in value) + "\n" + indent + "]"
    if isinstance(value, int):  # bool handled above; int subclasses print as ints (json does the same)
        return int.__repr__(value)
    if isinstance(value, str):
        return str(enc(value))
    if isinstance(value, float):
        return repr(value)
    from ._rawinfo import U64s

    if t is U64s:  # show --json's arrays: their text written in C
        return str(value.json(indent))
    raise TypeError(f"not JSON: {type(value).__name__}")


def _print_json(data: Any) -> None:
    sys.stdout.write(_json(data) + "\n")


_c_encoder: Any = None  # CPython's C JSON encoder (compact), False where it is missing or differs


def _not_json(value: Any) -> Any:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _compact(d: dict[str, Any]) -> str | None:
    """``json.dumps(d)`` through the interpreter's C encoder, without importing json (and re)."""
    global _c_encoder
    if _c_encoder is None:
        try:
            import _json

            enc = _json.make_encoder(None, _not_json, _json.encode_basestring_ascii, None, ": ", ", ", False,
                                     False, True)
            _c_encoder = enc if "".join(enc({"a": 1, "b": "x", "c": None}, 0)) == \
                '{"a": 1, "b": "x", "c": null}' else False
        except Exception:  # another interpreter's internals: the Python writer does it all
            _c_encoder = False
    if _c_encoder is False:
        return None
    return "".join(_c_encoder(d, 0))


def _item_json(d: dict[str, Any]) -> str:
    """A flat dict as an element of an indented top-level list: exactly ``_json(d, "  ")``.

    The C encoder's compact text becomes the indented one by replacing its item separators, which is
    only safe when ``, "`` occurs nowhere else (no string holds it) and nothing is nested; otherwise the
    Python writer runs.
    """
    s = _compact(d)
    if s is not None and s.count(', "') == len(d) - 1 and "[" not in s and s.find("{", 1) < 0:
        return "{\n    " + s[1:-1].replace(', "', ',\n    "') + "\n  }"
    return _json(d, "  ")


def _stream_json_list(items: Iterable[Any]) -> None:
    """A JSON list written in ~64 KiB chunks as items come: memory stays flat in the number of items."""
    write = sys.stdout.write
    chunk: list[str] = []
    size = 0
    lead = "[\n  "
    for item in items:
        text = _item_json(item) if type(item) is dict else _json(item, "  ")
        chunk.append(text)
        size += len(text)
        if size > 65536:
            write(lead + ",\n  ".join(chunk))
            lead, chunk, size = ",\n  ", [], 0
    if chunk:
        write(lead + ",\n  ".join(chunk))
        lead = ",\n  "
    write("[]\n" if lead == "[\n  " else "\n]\n")


# --- kernel access without the heavy modules ----------------------------------------------------------------


def _os_error(err: int, what: str, hint: str | None = None, family: str | None = None) -> OSError:
    from .errors import error

    return error(err, what, hint=hint, family=family)


_GET_FD_HINT = {_ENOENT: "no link with this id (bpflink list shows the ids)",
                _EPERM: "opening a link by id (BPF_LINK_GET_FD_BY_ID) needs CAP_SYS_ADMIN"}


def _open_link(link_id: int) -> int:
    """An fd of link ``link_id``; errors name the id the user typed."""
    from . import lowlevel as ll

    fd = int(ll.bpf_link_get_fd_by_id(link_id))
    if fd < 0:
        raise _os_error(-fd, f"link {link_id}", hint=_GET_FD_HINT.get(-fd))
    from ._linkkind import is_link, kind_from_proc

    if not is_link(fd):  # the kernel's answer, /proc's as a fallback (the library's one kind check)
        kind = kind_from_proc(fd) or "not a BPF link"
        os.close(fd)
        raise CliError(_EINVAL, f"id {link_id} is not a link ({kind})")
    return fd


def _link_dict(fd: int, link_id: int, *, raw_arrays: bool = False) -> dict[str, Any]:
    from ._rawinfo import InfoError, link_dict

    try:
        return link_dict(fd, raw_arrays=raw_arrays)
    except InfoError as exc:
        raise _os_error(exc.err, f"link {link_id}: get info") from None


class _Progs:
    """Program name and tag by id, each program asked once (links share programs)."""

    def __init__(self) -> None:
        self.cache: dict[int, tuple[str, str]] = {}

    def __call__(self, prog_id: int) -> tuple[str, str]:
        got = self.cache.get(prog_id)
        if got is None:
            got = self.cache[prog_id] = _prog_name_tag(prog_id)
        return got


def _prog_name_tag(prog_id: int) -> tuple[str, str]:
    from . import lowlevel as ll
    from ._native import ffi

    if not prog_id:
        return "-", "-"
    fd = int(ll.bpf_prog_get_fd_by_id(prog_id))
    if fd < 0:
        return "?", "?"
    try:
        info = ffi.new("struct bpf_prog_info *")
        size = ffi.new("__u32 *", ffi.sizeof("struct bpf_prog_info"))
        if ll.bpf_prog_get_info_by_fd(fd, info, size) < 0:
            return "?", "?"
        return ffi.string(info.name).decode(errors="replace") or "-", bytes(info.tag).hex()
    finally:
        os.close(fd)


def _state(d: dict[str, Any]) -> str:
    from ._rawinfo import is_detached

    detached = is_detached(d)
    return "detached" if detached else "attached" if detached is False else "-"


def _event(d: dict[str, Any]) -> str | None:
    """A perf_event link's event in words: ``tracepoint sched_switch``, ``uprobe /bin/bash+0x1f0``..."""
    if d.get("type") != "perf_event" or d.get("name") is None:
        return None
    kind, name = d["perf_type"], d["name"]
    if kind in ("uprobe", "uretprobe"):
        return f"{kind} {name}+{d['offset']:#x}"
    if kind in ("kprobe", "kretprobe"):
        where = name if name else f"{d['addr']:#x}"
        return f"{kind} {where}" + (f"+{d['offset']:#x}" if d["offset"] else "")
    if kind == "event":
        return f"perf event type {d['event_type']} config {d['config']:#x}"
    return f"{kind} {name}".rstrip()


# --- verbs --------------------------------------------------------------------------------------------------


def _link_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise ValueError(f"{text!r} is not a link id") from None
    if not 0 < value < 1 << 32:
        raise ValueError(f"link id must be in 1..2**32-1, got {value}")
    return value


@command("probe", "which attach types work on this kernel (by trial)", flag("--json"),
         option("--require", metavar="NAMES",
                help="comma-separated attach types or families that must work (exit 1 naming what is missing)"))
def cmd_probe(args: Args) -> int:
    from .probing import probe

    required = _resolve_requirements(args.require) if args.require else {}
    results = probe()
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        rows = [(r.attach_type.name.lower(), r.family, "yes" if r.supported else "no", r.reason) for r in results]
        print(_table(("ATTACH TYPE", "FAMILY", "SUPPORTED", "REASON"), rows))
    by_type = {r.attach_type: r for r in results}
    missing = []
    for name, types in required.items():
        bad = [by_type[at] for at in types if not by_type[at].supported]
        if bad:
            why = "; ".join(f"{r.attach_type.name.lower()}: {r.reason}" for r in bad)
            missing.append(f"{name} ({why})")
    if missing:
        print("bpflink probe: missing: " + " | ".join(missing), file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _aliases() -> dict[str, str]:
    """CLI name -> attach type name, from the family records (libbpf's SEC() words: fentry, tp_btf, ...)."""
    from .families import all as all_families

    return {alias: at for fam in all_families() for alias, at in fam.aliases.items()}


def _resolve_requirements(names: str) -> dict[str, list[Any]]:
    """``tcx,uprobe_multi,cgroup_inet_egress,fentry`` -> {name: attach types it stands for}.

    A feature name (``cgroup``, ``kprobe_session``, ``lsm_cgroup``...) stands for the attach types needing
    it, so ``cgroup`` does not require ``lsm_cgroup`` (BPF LSM); a family name otherwise for all of its types.
    """
    from .enums import AttachType
    from .families import family_of
    from .probing import feature_of, probeable

    known = probeable()
    aliases = _aliases()
    families = {family_of(at) for at in known}
    features = {feature_of(at) for at in known}
    wanted: dict[str, list[Any]] = {}
    for raw in names.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name in aliases and AttachType[aliases[name]] in known:
            wanted[name] = [AttachType[aliases[name]]]
        elif name in features:
            wanted[name] = [at for at in known if feature_of(at) == name]
        elif name in families:
            wanted[name] = [at for at in known if family_of(at) == name]
        elif name.upper() in AttachType.__members__ and AttachType[name.upper()] in known:
            wanted[name] = [AttachType[name.upper()]]
        else:
            raise UsageError(f"--require: {raw.strip()!r} is neither a probeable attach type nor a family "
                             f"(families: {', '.join(sorted(families))}; also {', '.join(aliases)})")
    return wanted


def _walk_failed(exc: Any) -> OSError:
    return _os_error(exc.err, "list links (BPF_LINK_GET_NEXT_ID/GET_FD_BY_ID)",
                     hint=_GET_FD_HINT.get(exc.err) if exc.err == _EPERM else None)


def _all_links() -> Iterable[Any]:
    """Every link's dict."""
    from ._rawinfo import InfoError, link_dict, walk

    links = walk()
    while True:
        try:
            info, fd = next(links)
        except StopIteration:
            return
        except InfoError as exc:
            raise _walk_failed(exc) from None
        try:
            d = link_dict(fd, info)
        except InfoError as exc:
            if exc.err == _ENOENT:
                continue
            raise _os_error(exc.err, f"link {int(info.id)}: get info") from None  # type: ignore[attr-defined]
        finally:
            if fd >= 0:
                os.close(fd)
        yield d


def _list_item_python(info: Any, fd: int) -> str | None:
    """The list element of a link the C formatter leaves to Python (``_rawinfo.json_list``)."""
    from ._rawinfo import InfoError, link_dict

    try:
        return _item_json(link_dict(fd, info))
    except InfoError as exc:
        if exc.err == _ENOENT:
            return None
        raise _os_error(exc.err, f"link {int(info.id)}: get info") from None


def _write_json_list() -> None:
    """``list --json``: the text formatted in C batches, written as it comes (memory flat in the links)."""
    from ._rawinfo import InfoError, json_list

    write = sys.stdout.write
    chunks = json_list(_list_item_python)
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except InfoError as exc:
            raise _walk_failed(exc) from None
        write(chunk)


def _ownership() -> tuple[dict[int, list[Any]], dict[int, list[str]]]:
    from .owners import fd_holders, pin_index

    holders, _ = fd_holders()
    pins, _ = pin_index()
    me = os.getpid()
    return {k: [h for h in v if h.pid != me] for k, v in holders.items()}, pins


def _with_owners(d: dict[str, Any], holders: dict[int, list[Any]], pins: dict[int, list[str]]) -> dict[str, Any]:
    # bpftool's keys for the same facts (bpftool link list -j with pids and -f)
    d["pinned"] = sorted(pins.get(d["id"], ()))
    d["pids"] = [{"pid": h.pid, "comm": h.comm, "fd": h.fd} for h in holders.get(d["id"], ())]
    return d


@command("list", "every link on the system (like bpftool link list)", flag("--json"),
         flag("--owners", help="also the processes holding each link and its pins"))
def cmd_list(args: Args) -> int:
    owners = args.owners
    if args.json and not owners:
        _write_json_list()
        return EXIT_OK
    holders, pins = _ownership() if owners else ({}, {})
    if args.json:
        _stream_json_list(_with_owners(d, holders, pins) for d in _all_links())
        return EXIT_OK
    if not owners:
        from .owners import pin_index

        pins = pin_index()[0]
    progs = _Progs()
    rows = []
    for d in _all_links():
        name, tag = progs(d["prog_id"])
        details = _details(d)
        state = _state(d)
        if state == "detached":
            details = "DETACHED " + details
        pinned = pins.get(d["id"])
        if pinned:
            details += " pinned=" + ",".join(sorted(pinned))
        row = [str(d["id"]), str(d["type"]), str(d["prog_id"]), name, tag]
        if owners:
            held = holders.get(d["id"], ())
            row.append(",".join(f"{h.pid}/{h.comm}/fd{h.fd}" for h in held) or "-")
        rows.append((*row, details))
    header = ("ID", "TYPE", "PROG", "NAME", "TAG", *(("HELD BY",) if owners else ()), "DETAILS")
    print(_table(header, rows))
    return EXIT_OK


@command("show", "one link's info", arg("id", type=_link_id), flag("--json"),
         flag("--owners", help="also the processes holding it and its pins"))
def cmd_show(args: Args) -> int:
    fd = _open_link(args.id)
    try:
        d = _link_dict(fd, args.id, raw_arrays=True)  # arrays printed from their C buffers (U64s)
    finally:
        os.close(fd)
    if args.json and not args.owners:
        _print_json(d)
        return EXIT_OK
    from .owners import owners

    held = owners(args.id)
    me = os.getpid()
    if args.json:
        d["pinned"] = list(held.pins)
        d["pids"] = [{"pid": h.pid, "comm": h.comm, "fd": h.fd} for h in held.processes if h.pid != me]
        _print_json(d)
        return EXIT_OK
    name, tag = _prog_name_tag(d["prog_id"])
    from ._rawinfo import U64s

    rows = [(k, _value(v.head(4), len(v)) if type(v) is U64s else _value(v)) for k, v in d.items()]
    rows.insert(3, ("prog_name", name))
    rows.insert(4, ("prog_tag", tag))
    event = _event(d)
    if event:
        rows.append(("event", event))
    rows.append(("state", _state(d)))
    rows.append(("pinned", ", ".join(held.pins) or "-"))
    if args.owners:
        rows.append(("held by", ", ".join(f"{h.pid} ({h.comm}) fd {h.fd}" for h in held.processes
                                          if h.pid != me) or "-"))
    print(_table(("FIELD", "VALUE"), rows))
    return EXIT_OK


@command("pin", "pin a link in bpffs so it outlives its owners", arg("id", type=_link_id), arg("path"))
def cmd_pin(args: Args) -> int:
    from . import lowlevel as ll

    _check_path(args.path, "path")
    fd = _open_link(args.id)
    try:
        ret = int(ll.bpf_obj_pin(fd, os.fsencode(args.path)))
    finally:
        os.close(fd)
    if ret < 0:
        raise _os_error(-ret, f"pin link {args.id} at {args.path}",
                        hint="path must be on a bpffs mount (mount -t bpf bpf /sys/fs/bpf) and not exist yet")
    print(f"pinned link {args.id} at {args.path}")
    return EXIT_OK


def _check_path(path: str, what: str) -> None:
    if "\0" in path:
        raise UsageError(f"{what} contains a NUL byte")


@command("unpin", "remove a bpffs pin (the link stays while a process holds it)", arg("path"))
def cmd_unpin(args: Args) -> int:
    from . import lowlevel as ll

    path = args.path
    _check_path(path, "path")
    fd = int(ll.bpf_obj_get(os.fsencode(path)))
    if fd < 0:
        raise _os_error(-fd, f"unpin {path}", hint="not a BPF pin: the path must be a file on a bpffs mount")
    try:
        from ._linkkind import is_link, kind_from_proc

        kind = kind_from_proc(fd) or "BPF object"
        what = kind.removeprefix("bpf-").removeprefix("bpf_")
        if is_link(fd):
            from contextlib import suppress

            from ._rawinfo import InfoError, raw

            with suppress(InfoError):
                what = f"link {int(raw(fd).id)}"  # type: ignore[attr-defined]
        os.unlink(path)
    finally:
        os.close(fd)
    print(f"unpinned {what} at {path}")
    return EXIT_OK


@command("detach", "detach a link from its hook", arg("id", type=_link_id),
         flag("--force", help="detach even while processes other than this command's ancestors hold the link"))
def cmd_detach(args: Args) -> int:
    from . import lowlevel as ll

    fd = _open_link(args.id)
    try:
        d = _link_dict(fd, args.id)
        from ._rawinfo import is_detached

        if is_detached(d):
            print(f"link {args.id} was already detached")
            return EXIT_OK
        from .owners import owners

        held = owners(args.id)
        others = held.others()
        named = ", ".join(f"pid {h.pid} ({h.comm}) fd {h.fd}" for h in others)
        mine = _ancestors()
        foreign = [h for h in others if h.pid not in mine]
        if foreign and not args.force:
            names = ", ".join(f"pid {h.pid} ({h.comm}) fd {h.fd}" for h in foreign)
            raise CliError(_EBUSY, f"link {args.id} is held by {names}; detaching stops it for them "
                                   "too: use --force")
        ret = int(ll.bpf_link_detach(fd))
        if ret < 0:
            raise _os_error(-ret, f"detach link {args.id}",
                            hint="this link kind cannot be detached; close every fd and unpin it"
                            if -ret == 95 else None)
    finally:
        os.close(fd)
    also = []
    if others:
        also.append(f"held by {named}")
    if held.pins:
        also.append(f"still pinned at {', '.join(held.pins)} (bpflink unpin PATH releases it)")
    print(f"detached link {args.id}" + (f" ({'; '.join(also)})" if also else ""))
    return EXIT_OK


def _ancestors() -> set[int]:
    """This command's parent, its parent... (not init): links they hold are the caller's own, detaching
    them needs no --force (a script or test that made the link and runs ``bpflink detach``)."""
    found: set[int] = set()
    pid = os.getppid()
    while pid > 1 and pid not in found and len(found) < 64:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            pid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _ifindex_for(dev: str) -> int:
    if "/" in dev or os.path.isdir(dev):
        raise UsageError(f"--dev takes a network interface name, not a path ({dev!r}); for a cgroup use --cgroup",
                         _EINVAL)
    import _socket

    try:
        return int(_socket.if_nametoindex(dev))
    except OSError:
        raise UsageError(f"no network device named {dev!r}", _ENODEV) from None


def _cgroup_fd(path: str) -> int:
    _check_path(path, "--cgroup")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        if "/" not in path:
            import _socket

            try:
                _socket.if_nametoindex(path)
            except OSError:
                pass
            else:
                raise UsageError(f"--cgroup takes a cgroup v2 directory; {path!r} is a network interface "
                                 "(use --dev)", _ENOTDIR) from None
        raise CliError(_ENOENT, f"query --cgroup {path}: No such file or directory") from None
    except NotADirectoryError:
        raise CliError(_ENOTDIR, f"query --cgroup {path}: not a directory; it takes a cgroup v2 "
                                 "directory") from None
    except OSError as exc:
        raise _os_error(exc.errno or _EINVAL, f"query --cgroup {path}: open") from None
    return fd


def _fast_query(target: int, attach: int) -> dict[str, Any] | None:
    """``bpf_prog_query_opts`` with link ids (6.6+ kernels); None for anything ``bpflink.query`` words or
    handles better (an error, an older kernel, a hook changing under us)."""
    from . import lowlevel as ll
    from ._native import ffi

    for _ in range(8):
        opts = ffi.new("struct bpf_prog_query_opts *")
        opts.sz = ffi.sizeof("struct bpf_prog_query_opts")
        one = ffi.new("__u32[]", 1)
        opts.link_ids = one
        if ll.bpf_prog_query_opts(target, attach, opts) < 0:
            return None
        count = int(opts.count)
        if count == 0:
            return {"revision": int(opts.revision), "attach_flags": int(opts.attach_flags), "entries": []}
        progs, links, flags = (ffi.new("__u32[]", count) for _ in range(3))
        opts = ffi.new("struct bpf_prog_query_opts *")
        opts.sz = ffi.sizeof("struct bpf_prog_query_opts")
        opts.count = count
        opts.prog_ids, opts.link_ids, opts.prog_attach_flags = progs, links, flags
        ret = ll.bpf_prog_query_opts(target, attach, opts)
        if ret == -28:  # ENOSPC: it grew in between
            continue
        if ret < 0:
            return None
        n = min(count, int(opts.count))
        return {"revision": int(opts.revision), "attach_flags": int(opts.attach_flags),
                "entries": [{"prog_id": p, "link_id": lk, "flags": f}
                            for p, lk, f in zip(ffi.unpack(progs, n), ffi.unpack(links, n), ffi.unpack(flags, n))]}
    return None


def _attach_value(name: str) -> int:
    from ._rawinfo import ATTACH_NAMES

    key = name.strip().lower().removeprefix("bpf_")
    for value, known in ATTACH_NAMES.items():
        if known == key:
            return value
    raise UsageError(f"--attach: {name!r} is not an attach type (e.g. tcx_ingress, cgroup_inet_egress)")


@command("query", "the programs and links at a hook, in run order",
         option("--dev", metavar="IFNAME", help="network device (xdp, tcx, netkit)", group="where"),
         option("--cgroup", metavar="PATH", help="cgroup v2 directory", group="where"),
         option("--attach", required=True, metavar="ATTACH_TYPE", help="e.g. tcx_ingress, cgroup_inet_egress"),
         flag("--json"))
def cmd_query(args: Args) -> int:
    at_value = _attach_value(args.attach)
    opened = -1
    if args.dev is not None:
        target = _ifindex_for(args.dev)
        where = f"--dev {args.dev}"
    else:
        opened = target = _cgroup_fd(args.cgroup)
        where = f"--cgroup {args.cgroup}"
    try:
        data = _fast_query(target, at_value)
        if data is None:  # the full path: old kernels, NotSupportedError, worded errors
            from .query import query

            try:
                result = query(target, at_value)
            except OSError as exc:
                err = exc.errno or _EINVAL
                from .errors import errno_name

                text = exc.strerror or str(exc)
                if type(exc).__name__ == "NotSupportedError":
                    text = str(exc)
                raise CliError(err, f"query {where} --attach {args.attach}: {text}"
                               + ("" if f"[{errno_name(err)}]" in text else f" [{errno_name(err)}]")) from None
            data = {"revision": result.revision, "attach_flags": result.attach_flags,
                    "entries": [{"prog_id": e.prog_id, "link_id": e.link_id, "flags": e.flags}
                                for e in result.entries]}
    finally:
        if opened >= 0:
            os.close(opened)
    if args.json:
        _print_json(data)
    else:
        revision = "not reported by this kernel" if data["revision"] is None else data["revision"]
        lines = [f"revision {revision}  attach_flags {data['attach_flags']:#x}"]
        rows = [(str(n), str(e["prog_id"]), str(e["link_id"] or "-"), f"{e['flags']:#x}")
                for n, e in enumerate(data["entries"])]
        lines.append(_table(("#", "PROG", "LINK", "FLAGS"), rows))
        print("\n".join(lines))
    return EXIT_OK


@command("explain", "what attaching this type would take here, without attaching",
         arg("attach_type", metavar="ATTACH_TYPE"), flag("--json"))
def cmd_explain(args: Args) -> int:
    from .explain import explain_attach

    try:
        report = explain_attach(args.attach_type)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"{args.attach_type!r}: {exc}") from None
    if args.json:
        _print_json(report)
        return EXIT_OK
    caps = report["capabilities"]
    lines = [f"{report['attach_type']}: {report['mechanism']}",
             f"kernel      {report['kernel']['running']} (needs >= {report['kernel']['needs']}: "
             f"{'ok' if report['kernel']['ok'] else 'TOO OLD'})",
             "config      " + (", ".join(f"{k}={v}" for k, v in report["config"].items()) or "nothing specific"),
             "caps        needs " + " + ".join(caps["needed"]) + "; this process "
             + ("has them" if not caps["missing"] else "lacks " + ", ".join(caps["missing"])),
             f"lockdown    {report['lockdown']}",
             f"unprivileged_bpf_disabled {report['unprivileged_bpf_disabled']}"]
    lines += [f"quirk       {q}" for q in report["quirks"]]
    print("\n".join(lines))
    return EXIT_OK


# --- parsing ------------------------------------------------------------------------------------------------


def _fast_parse(cmd: Command, argv: Sequence[str]) -> Args | None:
    """The whole grammar of ``cmd`` for well-formed command lines; None sends anything else (``--help``,
    unknown or missing options, bad values) to argparse, which words the error."""
    values: dict[str, Any] = {"verb": cmd.name, "debug": False}
    by_name: dict[str, Param] = {}
    positionals = []
    for p in cmd.params:
        values[p.dest] = p.default
        if p.kind == "pos":
            positionals.append(p)
        else:
            for n in p.names:
                by_name[n] = p
    seen: set[str] = set()
    i, pos = 0, 0
    while i < len(argv):
        tok = argv[i]
        i += 1
        if tok == "--debug":
            values["debug"] = True
            continue
        if tok.startswith("-") and tok != "-" and not _is_number(tok):
            name, eq, inline = tok.partition("=")
            named = by_name.get(name)
            if named is None or name in ("-h", "--help"):
                return None
            if named.kind == "flag":
                if eq:
                    return None
                values[named.dest] = True
            else:
                if eq:
                    raw = inline
                elif i < len(argv):
                    raw = argv[i]
                    i += 1
                else:
                    return None
                try:
                    values[named.dest] = named.conv(raw) if named.conv else raw
                except (TypeError, ValueError):
                    return None
            seen.add(named.dest)
            continue
        if pos >= len(positionals):
            return None
        p = positionals[pos]
        pos += 1
        try:
            values[p.dest] = p.conv(tok) if p.conv else tok
        except (TypeError, ValueError):
            return None
    if pos < len(positionals):
        return None
    groups: dict[str, list[str]] = {}
    for p in cmd.params:
        if p.kind == "opt" and p.required and p.dest not in seen:
            return None
        if p.group:
            groups.setdefault(p.group, [])
            if p.dest in seen:
                groups[p.group].append(p.dest)
    if any(len(v) != 1 for v in groups.values()):
        return None
    return Args(**values)


def _is_number(tok: str) -> bool:
    return tok[1:].isdigit()


def _argparse_type(conv: Callable[[str], Any] | None) -> Any:
    if conv is None:
        return None
    import argparse

    def convert(text: str) -> Any:
        try:
            return conv(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(conv, "__name__", "value")
    return convert


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The argparse parser for the whole table (help, and the wording of malformed command lines).

    ``json_errors``: a malformed command line is also reported as a JSON object on stdout (``--json``).
    """
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # every CLI error line carries an errno name
            self.print_usage(sys.stderr)
            if json_errors:
                _print_json({"error": message, "errno": "EINVAL"})
            self.exit(EXIT_USAGE, f"{self.prog}: EINVAL: {message}\n")

    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser = Parser(prog="bpflink", parents=[common],
                    description="Probe the kernel's BPF link support; list and manage links.")
    parser.add_argument("--version", action="store_true", help="bpflink's and the compiled libbpf's versions")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    groups: dict[str, Any] = {}
    for cmd in COMMANDS.values():
        words = cmd.name.split()
        target = sub
        for word in words[:-1]:  # "usdt list": a "usdt" verb with its own subcommands
            if word not in groups:
                g = sub.add_parser(word, parents=[common], help=f"{word} commands")
                groups[word] = g.add_subparsers(dest="subverb", metavar="COMMAND", required=True,
                                                parser_class=Parser)
            target = groups[word]
        p = target.add_parser(words[-1], parents=[common], help=cmd.help)
        exclusive: dict[str, Any] = {}
        for prm in cmd.params:
            kw: dict[str, Any] = {"help": prm.help}
            if prm.kind == "pos":
                p.add_argument(prm.dest, type=_argparse_type(prm.conv), metavar=prm.metavar, **kw)
                continue
            container = p
            if prm.group:
                if prm.group not in exclusive:
                    exclusive[prm.group] = p.add_mutually_exclusive_group(required=True)
                container = exclusive[prm.group]
            if prm.kind == "flag":
                container.add_argument(*prm.names, action="store_true", dest=prm.dest, **kw)
            else:
                container.add_argument(*prm.names, type=_argparse_type(prm.conv), metavar=prm.metavar,
                                       required=prm.required, dest=prm.dest, default=prm.default, **kw)
        p.set_defaults(func=cmd.func, verb=cmd.name)
    return parser


def _version() -> str:
    from . import __version__
    from . import lowlevel as ll
    from ._native import ffi

    libbpf = ffi.string(ll.libbpf_version_string()).decode().lstrip("v")
    return f"bpflink {__version__} (libbpf {libbpf})"


def _find(argv: Sequence[str]) -> tuple[Command | None, list[str], bool]:
    """(command, its arguments, --debug given before the verb)."""
    rest = list(argv)
    debug = False
    while rest and rest[0] == "--debug":
        debug = True
        rest.pop(0)
    if len(rest) >= 2 and f"{rest[0]} {rest[1]}" in COMMANDS:
        return COMMANDS[f"{rest[0]} {rest[1]}"], rest[2:], debug
    if rest and rest[0] in COMMANDS:
        return COMMANDS[rest[0]], rest[1:], debug
    return None, rest, debug


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    if argv is None:
        # the real command line: die quietly on a closed pipe, as Unix tools do (not in a host process
        # that calls main() itself)
        import _signal  # type: ignore[import-not-found]  # signal.py would import enum

        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        argv = sys.argv[1:]
    argv = list(argv)
    if argv[:1] == ["--version"] or argv[:2] == ["--debug", "--version"]:
        print(_version())
        return EXIT_OK
    own = _own_parser(argv)
    if own is not None:
        return own
    cmd, rest, debug = _find(argv)
    args = _fast_parse(cmd, rest) if cmd is not None else None
    if args is None:
        ns = build_parser(json_errors="--json" in argv).parse_args(argv)
        if getattr(ns, "version", False):
            print(_version())
            return EXIT_OK
        if getattr(ns, "func", None) is None:
            build_parser().print_usage(sys.stderr)
            print("bpflink: EINVAL: a VERB is required", file=sys.stderr)
            return EXIT_USAGE
        args = Args(**vars(ns))
    args.debug = debug or getattr(args, "debug", False)
    func = args.func if hasattr(args, "func") else COMMANDS[args.verb].func
    return _run(func, args)


def _own_parser(argv: list[str]) -> int | None:
    """Verbs outside the table: ``vm`` hands its whole command line to the guest runner, ``usdt list`` takes an
    optional positional argument (``bpflink.usdt``'s own argparse parser, in _usdt_cli.py)."""
    rest = list(argv)
    debug = False
    while rest[:1] == ["--debug"]:
        debug = True
        rest.pop(0)
    if rest[:1] == ["vm"]:
        from .testing.vm import main as vm_main

        return vm_main(rest[1:])
    if rest[:1] != ["usdt"]:
        return None
    import argparse

    from ._usdt_cli import add_usdt_parser

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> Any:  # every CLI error line carries an errno name
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: EINVAL: {message}\n")

    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)
    parser = Parser(prog="bpflink")
    add_usdt_parser(parser.add_subparsers(dest="verb", parser_class=Parser), common)
    ns = parser.parse_args(rest)
    args = Args(**vars(ns))
    args.verb = f"usdt {ns.usdt_verb}"
    args.debug = debug or getattr(ns, "debug", False)
    return _run(ns.func, args)


def _run(func: Callable[[Args], int], args: Args) -> int:
    verb = args.verb
    as_json = getattr(args, "json", False)
    try:
        code: int = func(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # SIGPIPE was ignored by whoever started us: still quiet. Point stdout at /dev/null so the
        # interpreter's final flush does not complain either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except (OSError, CliError, UsageError, ValueError, TypeError) as exc:
        if args.debug:
            raise
        from .errors import errno_name

        err = getattr(exc, "errno", None)
        if isinstance(exc, (CliError, UsageError)):
            message = str(exc)
            code = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
        elif isinstance(exc, OSError):
            message = exc.strerror or str(exc)
            if type(exc).__name__ == "NotSupportedError":
                message = str(exc)
            code = EXIT_ERROR
        else:
            err, message, code = _EINVAL, str(exc), EXIT_USAGE
        name = errno_name(err) if err else type(exc).__name__
        print(f"bpflink {verb}: {name}: {message}", file=sys.stderr)
        if as_json:
            _print_json({"error": message, "errno": name})
        return code


__all__ = ["COMMANDS", "Args", "arg", "build_parser", "command", "flag", "main", "option"]
