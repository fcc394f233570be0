"""``bpflink`` / ``python -m bpflink``: probe the kernel, list, show, pin, detach links, query hooks.

    bpflink probe [--json] [--require tcx,uprobe_multi]
    bpflink list [--json]
    bpflink show ID [--json]
    bpflink pin ID PATH
    bpflink detach ID
    bpflink query (--dev IFNAME | --cgroup PATH) --attach tcx_ingress [--json]
    bpflink usdt list (BINARY | --pid PID [BINARY]) [--json]

Errors print one line (errno name, message, hint) and exit non-zero: 1 for a kernel refusal or when
``probe --require`` finds something missing (it names it), 2 for bad usage. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .enums import AttachType
from .errors import errno_name
from .families import family_of
from .info import LinkInfo
from .link import Link
from .listing import links
from .probe import ProbeResult, feature_of, probe, probeable

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad names or arguments found after argparse: exit 2 with one line."""


# --- output helpers -----------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last one is not padded."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths)] + [str(row[-1])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _value(value: Any) -> str:
    if isinstance(value, list):
        shown = ",".join(hex(v) if isinstance(v, int) else str(v) for v in value[:4])
        more = f",...(+{len(value) - 4})" if len(value) > 4 else ""
        return f"[{shown}{more}]"
    return str(value)


def _details(info: LinkInfo) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in info.details().items() if v is not None)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# --- verbs --------------------------------------------------------------------------------------------------


# the names libbpf's SEC() prefixes give the tracing attach types
_ALIASES = {"fentry": "TRACE_FENTRY", "fexit": "TRACE_FEXIT", "fmod_ret": "MODIFY_RETURN", "lsm": "LSM_MAC",
            "tp_btf": "TRACE_RAW_TP", "fsession": "TRACE_FSESSION"}


def _resolve_requirements(names: str) -> dict[str, list[AttachType]]:
    """``tcx,uprobe_multi,cgroup_inet_egress,fentry`` -> {name: attach types it stands for}.

    A feature name (``cgroup``, ``kprobe_session``, ``lsm_cgroup``...) stands for the attach types needing
    it, so ``cgroup`` does not require ``lsm_cgroup`` (BPF LSM); a family name otherwise for all of its types.
    """
    known = probeable()
    families = {family_of(at) for at in known}
    features = {feature_of(at) for at in known}
    wanted: dict[str, list[AttachType]] = {}
    for raw in names.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        if name in _ALIASES and AttachType[_ALIASES[name]] in known:
            wanted[name] = [AttachType[_ALIASES[name]]]
        elif name in features:
            wanted[name] = [at for at in known if feature_of(at) == name]
        elif name in families:
            wanted[name] = [at for at in known if family_of(at) == name]
        elif name.upper() in AttachType.__members__ and AttachType[name.upper()] in known:
            wanted[name] = [AttachType[name.upper()]]
        else:
            raise UsageError(f"--require: {raw.strip()!r} is neither a probeable attach type nor a family "
                             f"(families: {', '.join(sorted(families))}; also {', '.join(_ALIASES)})")
    return wanted


def cmd_probe(args: argparse.Namespace) -> int:
    required = _resolve_requirements(args.require) if args.require else {}
    results = probe()
    if args.json:
        _print_json([r.to_dict() for r in results])
    else:
        rows = [(r.attach_type.name.lower(), r.family, "yes" if r.supported else "no", r.reason) for r in results]
        print(_table(("ATTACH TYPE", "FAMILY", "SUPPORTED", "REASON"), rows))
    by_type: dict[AttachType, ProbeResult] = {r.attach_type: r for r in results}
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


def cmd_list(args: argparse.Namespace) -> int:
    infos = list(links())
    if args.json:
        _print_json([i.to_dict() for i in infos])
    else:
        rows = [(str(i.id), i.type.name.lower(), str(i.prog_id), _details(i)) for i in infos]
        print(_table(("ID", "TYPE", "PROG", "DETAILS"), rows))
    return EXIT_OK


def _link_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a link id") from None
    if not 0 < value < 1 << 32:
        raise argparse.ArgumentTypeError(f"link id must be in 1..2**32-1, got {value}")
    return value


def cmd_show(args: argparse.Namespace) -> int:
    with Link.from_id(args.id) as link:
        info = link.info()
    if args.json:
        _print_json(info.to_dict())
    else:
        print(_table(("FIELD", "VALUE"), [(k, _value(v)) for k, v in info.to_dict().items()]))
    return EXIT_OK


def cmd_pin(args: argparse.Namespace) -> int:
    with Link.from_id(args.id) as link:
        link.pin(args.path)
    print(f"pinned link {args.id} at {args.path}")
    return EXIT_OK


def cmd_detach(args: argparse.Namespace) -> int:
    with Link.from_id(args.id) as link:
        link.detach()
    print(f"detached link {args.id}")
    return EXIT_OK


def cmd_query(args: argparse.Namespace) -> int:
    from .query import query  # written alongside; imported late so the other verbs never depend on it

    try:
        at = AttachType.parse(args.attach)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"--attach: {exc}") from None
    target = args.dev if args.dev is not None else args.cgroup
    result = query(target, at)
    if args.json:
        _print_json({"revision": result.revision, "attach_flags": result.attach_flags,
                     "entries": [{"prog_id": e.prog_id, "link_id": e.link_id, "flags": e.flags}
                                 for e in result.entries]})
    else:
        revision = "not reported by this kernel" if result.revision is None else result.revision
        print(f"revision {revision}  attach_flags {result.attach_flags:#x}")
        rows = [(str(n), str(e.prog_id), str(e.link_id or "-"), f"{e.flags:#x}") for n, e in enumerate(result.entries)]
        print(_table(("#", "PROG", "LINK", "FLAGS"), rows))
    return EXIT_OK


def cmd_vm(args: argparse.Namespace) -> int:
    """``bpflink vm --kernel 6.12 -- CMD``: CMD as root in a QEMU guest booting that pinned kernel."""
    from .testing.vm import main as vm_main

    return vm_main(args.vm_args)


# --- parser and main ----------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback on errors")
    parser = argparse.ArgumentParser(prog="bpflink", parents=[common],
                                     description="Probe the kernel's BPF link support; list and manage links.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("probe", parents=[common], help="which attach types work on this kernel (by trial)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--require", metavar="NAMES",
                   help="comma-separated attach types or families that must work (exit 1 naming what is missing)")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("list", parents=[common], help="every link on the system (like bpftool link list)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("show", parents=[common], help="one link's info")
    p.add_argument("id", type=_link_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("pin", parents=[common], help="pin a link in bpffs so it outlives its owners")
    p.add_argument("id", type=_link_id)
    p.add_argument("path")
    p.set_defaults(func=cmd_pin)

    p = sub.add_parser("detach", parents=[common], help="detach a link from its hook")
    p.add_argument("id", type=_link_id)
    p.set_defaults(func=cmd_detach)

    p = sub.add_parser("query", parents=[common], help="the programs and links at a hook, in run order")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--dev", metavar="IFNAME", help="network device (xdp, tcx, netkit)")
    where.add_argument("--cgroup", metavar="PATH", help="cgroup v2 directory")
    p.add_argument("--attach", required=True, metavar="ATTACH_TYPE", help="e.g. tcx_ingress, cgroup_inet_egress")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_query)
    from ._usdt_cli import add_usdt_parser  # usdt list: its own module (src/bpflink/_usdt_cli.py)
    add_usdt_parser(sub, common)

    p = sub.add_parser("vm", add_help=False, prefix_chars="\0", help="run a command in a QEMU guest booting "
                       "another kernel (bpflink vm --kernel 6.12 -- CMD; bpflink.testing.vm)")
    p.add_argument("vm_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_vm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script passes it to ``sys.exit``)."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    try:
        code: int = args.func(args)
        return code
    except OSError as exc:
        if debug:
            raise
        name = errno_name(exc.errno) if exc.errno else type(exc).__name__
        print(f"bpflink {args.verb}: {name}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    except (UsageError, ValueError, TypeError) as exc:
        if debug:
            raise
        print(f"bpflink {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE


__all__ = ["build_parser", "main"]
