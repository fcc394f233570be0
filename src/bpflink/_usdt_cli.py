"""``bpflink usdt list BINARY | --pid PID [BINARY]``: a binary's USDT probes (like ``readelf -n`` / ``tplist``).

Kept out of cli.py so the CLI's other verbs do not import it: cli.py registers it with one call.

    bpflink usdt list /usr/bin/python3.11
    bpflink usdt list --pid 1234            # the executable and every library process 1234 mapped
    bpflink usdt list --pid 1234 libc.so.6  # one file, as that process sees it
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_usdt_list(args: argparse.Namespace) -> int:
    from .usdt import UsdtProbe, describe, probes

    found: list[UsdtProbe] = []
    if args.binary is None and args.pid is None:
        raise ValueError("give a BINARY, a --pid PID, or both")
    if args.binary is not None:
        found = probes(args.binary, pid=args.pid)
    else:
        from .targets import mapped_files

        for target in mapped_files(args.pid):  # each distinct (device, inode), openable here
            try:
                found += probes(target.path)
            except (ValueError, OSError):  # mapped non-ELF files (locale archives, fonts) and vanished ones
                continue
    if args.json:
        print(json.dumps([p.to_dict() for p in found], indent=2))
    else:
        by_file: dict[str, list[UsdtProbe]] = {}
        for p in found:
            by_file.setdefault(p.path, []).append(p)
        for path, group in by_file.items():
            print(f"{path}:")
            print("\n".join("  " + line for line in describe(group).splitlines()))
        if not found:
            print("no USDT probes")
    return 0


def _pid(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pid: {text!r}") from None
    if not 0 < value < 1 << 31:
        raise argparse.ArgumentTypeError(f"pid must be in 1..2**31-1, got {value}")
    return value


def add_usdt_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``usdt list`` on cli.py's subparsers."""
    p = sub.add_parser("usdt", parents=[common], help="USDT probes of a binary or process")
    verbs = p.add_subparsers(dest="usdt_verb", required=True, metavar="USDT_VERB")
    lp = verbs.add_parser("list", parents=[common], help="list USDT probes: provider, name, sites, semaphore, args")
    lp.add_argument("binary", nargs="?", help="ELF file (with --pid: as that process sees it; a bare library name "
                    "is looked up in its mappings)")
    lp.add_argument("--pid", type=_pid, help="process whose mount namespace and mappings to use")
    lp.add_argument("--json", action="store_true")
    lp.set_defaults(func=cmd_usdt_list)


__all__ = ["add_usdt_parser", "cmd_usdt_list"]
