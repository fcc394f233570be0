"""Compare ``struct bpf_link_create_opts`` as the installed bpflink sees it with what the C compiler says.

tests/layout_probe.c, compiled against the headers bpflink was built with, prints offset and size of every
member (nested ones too); cffi's ``ffi.offsetof``/``ffi.sizeof`` and the table compiled into the extension
(``lib.bpflink_layout_table``) must agree line by line. Used by tests/test_wheel.py and, standalone, by
cibuildwheel's test-command on each architecture (no pytest there)::

    python tests/layout_check.py /opt/libbpf/include    # prints "layout ok: ..." or the differences, exit 1
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OPTS = "struct bpf_link_create_opts"
PROBE = Path(__file__).resolve().parent / "layout_probe.c"


def c_layout(include_dir: Path, workdir: Path) -> tuple[dict[str, tuple[int, int]], int, str]:
    """({member: (offset, size)}, sizeof, "major.minor") from layout_probe.c over ``include_dir`` first."""
    exe = workdir / "layout_probe"
    cc = os.environ.get("CC", "cc").split()
    # the include order build_ffi.py uses for a libbpf prefix: its headers (and uapi) before the system's
    subprocess.run([*cc, "-O0", f"-I{include_dir}", str(PROBE), "-o", str(exe)], check=True, capture_output=True,
                   text=True)
    rows: dict[str, tuple[int, int]] = {}
    size, version = -1, ""
    for line in subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.splitlines():
        name, *values = line.split("\t")
        if name == "sizeof":
            size = int(values[0])
        elif name == "libbpf":
            version = values[0]
        else:
            rows[name] = (int(values[0]), int(values[1]))
    return rows, size, version


def cffi_members(ctype: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every member cffi knows, nested anonymous structs as ``outer.inner``."""
    for name, field in ctype.fields:
        yield prefix + name, field.type
        if field.type.kind == "struct" and field.type.cname.startswith("struct $"):
            yield from cffi_members(field.type, f"{prefix}{name}.")


def differences(include_dir: Path, workdir: Path) -> list[str]:
    """Empty when cffi, the extension's table and the C compiler agree on every member; else what differs."""
    import bpflink
    from bpflink._native import ffi, lib

    rows, size, version = c_layout(include_dir, workdir)
    problems = []
    if version != bpflink.libbpf_version():
        problems.append(f"headers are libbpf {version}, the extension was built with {bpflink.libbpf_version()}")
    cffi_view = {name: (ffi.offsetof(OPTS, *name.split(".")), ffi.sizeof(tp))
                 for name, tp in cffi_members(ffi.typeof(OPTS))}
    for name in sorted(set(cffi_view) | set(rows)):
        if cffi_view.get(name) != rows.get(name):
            problems.append(f"{name}: cffi {cffi_view.get(name)}, C {rows.get(name)} (offset, size)")
    if ffi.sizeof(OPTS) != size:
        problems.append(f"sizeof: cffi {ffi.sizeof(OPTS)}, C {size}")
    table = {ffi.string(e.member).decode(): (e.offset, e.size)
             for e in (lib.bpflink_layout_table[i] for i in range(lib.bpflink_layout_count))
             if ffi.string(e.type).decode() == OPTS}
    if len(table) < 20:  # every nested member of the union is in it
        problems.append(f"bpflink_layout_table has only {len(table)} rows for {OPTS}")
    problems += [f"{name}: extension table {table[name]}, C {rows.get(name)}" for name in table
                 if table[name] != rows.get(name)]
    return problems


def main() -> int:
    include_dir = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        problems = differences(include_dir, Path(tmp))
        count = len(c_layout(include_dir, Path(tmp))[0])
    if problems:
        print("layout MISMATCH:\n  " + "\n  ".join(problems))
        return 1
    print(f"layout ok: {count} members of {OPTS} agree (cffi, extension table, C compiler)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
