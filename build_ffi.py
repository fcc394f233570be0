"""cffi API-mode builder for ``bpflink._ffi``.

The cdef is assembled from our declarations in ``include/*.h``; every size, offset and constant value
comes from the real ``<bpf/bpf.h>``/``<linux/bpf.h>`` through the C compiler. Enumerator *names* are read
from the preprocessed headers, so a header that lacks a name simply lacks it at run time.

Which libbpf (``BPFLINK_LIBBPF``):
  bundled (default in a git checkout): libbpf 1.7.0 built statically by ``scripts/build-libbpf``
  system (default in an sdist):        the system's libbpf-dev >= 1.4, found with pkg-config
  /some/prefix:                        a prefix holding include/bpf/bpf.h and lib/libbpf.a
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
INCLUDE = HERE / "include"
MIN_SYSTEM_LIBBPF = (1, 4)
ENUMS = ("bpf_attach_type", "bpf_prog_type", "bpf_link_type", "bpf_map_type")
# order matters: later files use the types and enums declared by earlier ones
CDEF_FILES = ("types.h", "<enums>", "constants.h", "info.h", "iter.h", "link.h", "prog.h", "map.h", "object.h",
              "perf.h", "attach.h", "elf.h", "ringbuf.h")
HEADERS = """
#include <stdbool.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/netfilter.h>
#include <linux/perf_event.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf_version.h>
#include <gelf.h>
"""


class BuildError(SystemExit):
    def __init__(self, message: str) -> None:
        super().__init__(f"bpflink build: {message}")


def _version() -> str:
    text = (HERE / "src" / "bpflink" / "_version.py").read_text()
    match = re.search(r'__version__ = "([^"]+)"', text)
    assert match, "src/bpflink/_version.py has no __version__"
    return match.group(1)


def _pkg_config(*args: str) -> list[str]:
    try:
        out = subprocess.run(["pkg-config", *args, "libbpf"], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(
            "no system libbpf found (pkg-config libbpf failed). Install libbpf-dev >= 1.4 "
            "(Debian bookworm: apt-get install -t bookworm-backports libbpf-dev), "
            "or build the bundled one with BPFLINK_LIBBPF=bundled"
        ) from exc
    return shlex.split(out.stdout)


def libbpf_choice() -> str:
    """BPFLINK_LIBBPF, else bundled in a checkout and system in an sdist (MANIFEST.in leaves scripts/ out)."""
    default = "bundled" if (HERE / "scripts" / "build-libbpf").exists() else "system"
    return os.environ.get("BPFLINK_LIBBPF", default)


def libbpf_config() -> dict[str, list[str]]:
    """Include dirs, objects and libraries for the libbpf chosen by BPFLINK_LIBBPF."""
    choice = libbpf_choice()
    if choice == "system":
        cflags = _pkg_config("--cflags")
        return {
            "include_dirs": [f[2:] for f in cflags if f.startswith("-I")],
            "extra_objects": [],
            "libraries": [f[2:] for f in _pkg_config("--libs") if f.startswith("-l")] or ["bpf"],
            "library_dirs": [f[2:] for f in _pkg_config("--libs") if f.startswith("-L")],
            "extra_link_args": [],
        }
    if choice == "bundled":
        prefix = Path(os.environ.get("LIBBPF_PREFIX", HERE / "build" / "libbpf"))
        if not (prefix / "lib" / "libbpf.a").exists():
            subprocess.run([str(HERE / "scripts" / "build-libbpf")], check=True,
                           env={**os.environ, "LIBBPF_PREFIX": str(prefix)})
    else:
        prefix = Path(choice)
    static = prefix / "lib" / "libbpf.a"
    if not (prefix / "include" / "bpf" / "bpf.h").exists() or not static.exists():
        raise BuildError(f"{prefix} has no include/bpf/bpf.h and lib/libbpf.a (run scripts/build-libbpf)")
    return {
        # libbpf's own uapi headers (installed beside bpf/) come before the system's <linux/bpf.h>
        "include_dirs": [str(prefix / "include")],
        "extra_objects": [str(static)],
        "libraries": ["elf", "z"],
        "library_dirs": [],
        # keep libbpf's symbols private to our extension
        "extra_link_args": ["-Wl,--exclude-libs,ALL"],
    }


def preprocess(include_dirs: list[str]) -> str:
    """The headers as the compiler sees them, with macro definitions (-dD)."""
    cc = os.environ.get("CC", "cc").split()
    with tempfile.NamedTemporaryFile("w", suffix=".c") as src:
        src.write(HEADERS)
        src.flush()
        args = [*cc, "-E", "-dD", *(f"-I{d}" for d in include_dirs), src.name]
        try:
            return subprocess.run(args, check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as exc:
            raise BuildError(f"the libbpf headers do not preprocess:\n{exc.stderr}") from exc


def header_version(text: str) -> tuple[int, int]:
    found = {m.group(1): int(m.group(2)) for m in re.finditer(r"#define LIBBPF_(MAJOR|MINOR)_VERSION (\d+)", text)}
    if len(found) != 2:
        raise BuildError("<bpf/libbpf_version.h> does not define LIBBPF_MAJOR/MINOR_VERSION: libbpf too old")
    return found["MAJOR"], found["MINOR"]


def enum_cdef(text: str, name: str) -> str:
    """`enum NAME { A, B, ... };` with the enumerator names the headers define; values via the compiler."""
    match = re.search(rf"enum\s+{name}\s*\{{(.*?)\}}", text, re.S)
    if not match:
        raise BuildError(f"the headers define no enum {name}")
    body = re.sub(r"#.*", "", match.group(1))
    names = [item.split("=")[0].strip() for item in body.split(",")]
    names = [n for n in names if re.fullmatch(r"[A-Z][A-Z0-9_]*", n)]
    return "enum {} {{ {}, ... }};".format(name, ", ".join(names))


def cdef_text(text: str, version: tuple[int, int]) -> str:
    defined = set(re.findall(r"\b[A-Z_][A-Z0-9_]*\b", text))
    parts = []
    for fname in CDEF_FILES:
        if fname == "<enums>":
            parts.extend(enum_cdef(text, e) for e in ENUMS)
            continue
        src = (INCLUDE / fname).read_text()

        def requires(m: re.Match[str]) -> str:
            need = tuple(int(x) for x in m.group(1).split("."))
            return m.group(2) if version >= need else ""

        src = re.sub(r"/\*@requires libbpf >= ([\d.]+)\*/\n(.*?)/\*@end\*/\n", requires, src, flags=re.S)
        lines = [ln for ln in src.splitlines()
                 if not (m := re.match(r"#define (\w+) \.\.\.", ln)) or m.group(1) in defined]
        parts.append("\n".join(lines))
    parts.append((INCLUDE / "shims.h").read_text())
    parts.append((INCLUDE / "linkjson.h").read_text())
    return "\n".join(parts)


def _resolved(include_dirs: list[str], header: str) -> str:
    """The file the compiler takes for ``#include <header>`` with these include dirs (cc -M)."""
    cc = os.environ.get("CC", "cc").split()
    with tempfile.NamedTemporaryFile("w", suffix=".c") as src:
        src.write(f"#include <{header}>\n")
        src.flush()
        res = subprocess.run([*cc, "-M", *(f"-I{d}" for d in include_dirs), src.name], capture_output=True, text=True)
    found = [d for d in res.stdout.replace("\\\n", " ").split() if d.endswith("/" + header)]
    return found[0] if found else header


def _owner(path: str) -> str:
    """'package version' of the Debian package that installed path, when dpkg knows it."""
    try:
        pkg = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=True).stdout
        name = pkg.split(":")[0].strip()
        ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True,
                             check=True).stdout
        return f"{name} {ver}"
    except (OSError, subprocess.CalledProcessError, IndexError):
        return ""


MISSING_MEMBER = re.compile(r"error: '?((?:struct|union) \w+)'? has no member named '(\w+)'")


def check_uapi(cdef: str, source: str, include_dirs: list[str]) -> None:
    """Compile cffi's C source once for syntax only; members our declarations use but the headers lack mean the
    uapi headers (<linux/bpf.h>, not libbpf's <bpf/*.h>) are too old. Refuse then, naming the header file, its
    package and the members, instead of failing with one compiler error per member later."""
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "_ffi_probe.c"
        probe = FFI()
        probe.cdef(cdef)
        probe.set_source("_ffi_probe", source)
        with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating ..."
            probe.emit_c_code(str(c_file))
        cc = os.environ.get("CC", "cc").split()
        args = [*cc, "-fsyntax-only", "-w", f"-I{sysconfig.get_paths()['include']}",
                *(f"-I{d}" for d in include_dirs), str(c_file)]
        # LC_ALL=C: ASCII quotes in the messages
        res = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    missing = sorted({f"{m.group(1)}.{m.group(2)}" for m in MISSING_MEMBER.finditer(res.stderr)})
    if not missing:
        return  # other errors, if any, show in the real build with the full compiler output
    header = _resolved(include_dirs, "linux/bpf.h")
    owner = _owner(header)
    raise BuildError(
        f"the kernel uapi header {header}{f' ({owner})' if owner else ''} is older than bpflink's declarations: "
        f"it lacks {', '.join(missing)}. Install newer kernel uapi headers (Debian bookworm: "
        "apt-get install -t bookworm-backports linux-libc-dev, 6.12) or build against the bundled libbpf, whose "
        "own uapi copy is used (BPFLINK_LIBBPF=bundled in a git checkout)"
    )


def make_ffi() -> FFI:
    config = libbpf_config()
    text = preprocess(config["include_dirs"])
    version = header_version(text)
    # libbpf_choice(), not the variable: an sdist build is "system" with BPFLINK_LIBBPF unset
    if libbpf_choice() == "system" and version < MIN_SYSTEM_LIBBPF:
        raise BuildError(
            "system libbpf %d.%d is older than %d.%d: install libbpf-dev >= 1.4 "
            "(Debian bookworm: apt-get install -t bookworm-backports libbpf-dev)" % (*version, *MIN_SYSTEM_LIBBPF)
        )
    ffi = FFI()
    cdef = cdef_text(text, version)
    ffi.cdef(cdef)
    source = (
        HEADERS
        + f'\nstatic const char *const bpflink_build_version = "{_version()}";\n'
        + (INCLUDE / "shims.c").read_text()
        + (INCLUDE / "ringbuf.c").read_text()
        + (INCLUDE / "linkjson.c").read_text()
    )
    check_uapi(cdef, source, config["include_dirs"])
    ffi.set_source(
        "bpflink._ffi",
        source,
        include_dirs=config["include_dirs"],
        extra_objects=config["extra_objects"],
        libraries=config["libraries"],
        library_dirs=config["library_dirs"],
        extra_link_args=config["extra_link_args"],
        extra_compile_args=["-O2", "-Wno-unused-parameter"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE / "build" / "cffi"), verbose="-v" in sys.argv)
