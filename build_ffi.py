"""cffi API-mode builder for ``bpflink._ffi``.

The cdef is assembled from our declarations in ``include/*.h``; every size, offset and constant value
comes from the real ``<bpf/bpf.h>``/``<linux/bpf.h>`` through the C compiler. Enumerator *names* are read
from the preprocessed headers, so a header that lacks a name simply lacks it at run time.

Names the headers may lack (``/*@if NAME*/ ... /*@end*/`` blocks and ``#define NAME ...`` lines of include/*.h:
a struct member ``struct S.a.b``, a function, a constant) are decided here, once, by one syntax-only compile
with a line per name (probe_presence). Absent ones are dropped from the cdef, reported by the build, defined
as ``BPFLINK_HAS_<name> 0`` for C and recorded in the extension with the reason (the header file and its
package) for ``bpflink._native.has()``: the features needing one raise ``NotSupportedError``. There is no
libbpf-version condition besides the minimum system libbpf. The offsetof table that checks the members cffi
lays out itself is generated from the same cdef (layout_rows).

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


IF_LINE = re.compile(r"^/\*@if ([^*]+?)\*/$", re.M)
DEFINE = re.compile(r"^#define (\w+) \.\.\.$", re.M)


def conditional_names() -> list[str]:
    """Every name our declarations may find missing from the headers, in declaration order: the ``/*@if NAME*/``
    blocks of include/*.h (a member ``struct S.a.b``, a function, a constant) and each ``#define NAME ...``."""
    names: dict[str, None] = {}
    for fname in CDEF_FILES:
        if fname != "<enums>":
            src = (INCLUDE / fname).read_text()
            names.update((m.group(1).strip(), None) for m in IF_LINE.finditer(src))
            names.update((m.group(1), None) for m in DEFINE.finditer(src))
    return list(names)


def _probe_expr(name: str) -> str:
    if name.startswith(("struct ", "union ")):
        ctype, _, path = name.partition(".")
        return f"sizeof(((const {ctype} *)0)->{path})"
    return f"({name})"


def probe_presence(names: list[str], include_dirs: list[str]) -> set[str]:
    """The names the headers lack, found by one syntax-only compile: one line per name, and a compiler error on a
    line means that name is missing. Members, functions, enumerators and macros are all found the same way."""
    cc = os.environ.get("CC", "cc").split()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bpflink_presence.c"
        head = HEADERS.strip("\n") + "\n"
        first = head.count("\n") + 1
        body = "".join(f"static void bpflink_presence_{i}(void) {{ (void){_probe_expr(n)}; }}\n"
                       for i, n in enumerate(names))
        src.write_text(head + body)
        res = subprocess.run([*cc, "-fsyntax-only", "-w", *(f"-I{d}" for d in include_dirs), str(src)],
                             capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    lines = {int(m.group(1)) for m in re.finditer(rf"^{re.escape(str(src))}:(\d+):\d+: error:", res.stderr, re.M)}
    if res.returncode != 0 and (not lines or min(lines) < first):
        raise BuildError(f"the headers do not compile:\n{res.stderr}")
    return {names[line - first] for line in lines}


def declared_in(text: str, ctype: str) -> str:
    """The header file that defines ``struct S``/``union U``, from the preprocessor's line markers."""
    match = re.search(rf"^{re.escape(ctype)}\s*\{{", text, re.M)
    if not match:
        return "the headers"
    markers = re.findall(r'^# \d+ "([^"]+)"', text[:match.start()], re.M)
    return markers[-1] if markers else "the headers"


def absence_reasons(absent: set[str], text: str, version: tuple[int, int], include_dirs: list[str]) -> dict[str, str]:
    """Why each absent name is absent, naming the header (and its Debian package, when dpkg knows it)."""
    reasons = {}
    for name in sorted(absent):
        if name.startswith(("struct ", "union ")):
            ctype, _, path = name.partition(".")
            header = declared_in(text, ctype)
            owner = _owner(header) if header.startswith("/") else ""
            reasons[name] = f"{header}{f' ({owner})' if owner else ''} has no member {path} in {ctype}"
        elif "__" in name or name.startswith(("bpf_", "btf_", "libbpf_")):
            reasons[name] = f"libbpf {version[0]}.{version[1]} has no {name}()"
        else:
            header = _resolved(include_dirs, "linux/bpf.h")
            reasons[name] = f"the compiled headers do not define {name} (<linux/bpf.h> is {header})"
    return reasons


def _select(src: str, absent: set[str]) -> str:
    """src without the lines of ``/*@if NAME*/ ... /*@end*/`` blocks (nested ones too) whose NAME is absent."""
    out, stack = [], []
    for line in src.splitlines():
        if m := IF_LINE.match(line):
            stack.append(m.group(1).strip() not in absent)
        elif line == "/*@end*/":
            stack.pop()
        elif all(stack):
            out.append(line)
    if stack:
        raise BuildError("an /*@if*/ block in include/ has no /*@end*/")
    return "\n".join(out) + "\n"


def cdef_text(text: str, absent: set[str]) -> str:
    """The cdef: include/*.h with the ``@if`` blocks and ``#define`` lines of absent names dropped."""
    parts = []
    for fname in CDEF_FILES:
        if fname == "<enums>":
            parts.extend(enum_cdef(text, e) for e in ENUMS)
            continue
        src = _select((INCLUDE / fname).read_text(), absent)
        parts.append(DEFINE.sub(lambda m: "" if m.group(1) in absent else m.group(0), src))
    parts.append((INCLUDE / "shims.h").read_text())
    parts.append((INCLUDE / "linkjson.h").read_text())
    return "\n".join(parts)


def layout_rows(cdef: str) -> list[tuple[str, str]]:
    """(type, member path) of every member cffi lays out itself, unchecked by the C compiler: members of anonymous
    structs and unions at any depth, and every member of a struct that holds one (its later offsets depend on
    them). The generated table compiles offsetof/sizeof of each, and _native compares them at import."""
    from cffi import model

    parsed = FFI()
    parsed.cdef(cdef)
    rows: list[tuple[str, str]] = []

    def anonymous(tp: object) -> bool:
        return isinstance(tp, model.StructOrUnion) and tp.name.startswith("$")

    def walk(ctype: str, tp: model.StructOrUnion, prefix: str, inside: bool) -> None:
        fields = list(zip(tp.fldnames or (), tp.fldtypes or ()))
        inside = inside or any(anonymous(t) for _, t in fields)
        for name, ftype in fields:
            if name == "":  # an anonymous member: its members are reached by their own names
                walk(ctype, ftype, prefix, True)
                continue
            if inside:
                rows.append((ctype, prefix + name))
            if anonymous(ftype):
                walk(ctype, ftype, f"{prefix}{name}.", True)

    for key, (tp, _) in parsed._parser._declarations.items():
        kind, _, cname = key.partition(" ")
        if kind in ("struct", "union") and isinstance(tp, model.StructOrUnion) and not cname.startswith("$"):
            walk(key, tp, "", False)
    return rows


def _macro(name: str) -> str:
    return "BPFLINK_HAS_" + re.sub(r"\W+", "_", name)


def generated_source(names: list[str], absent: set[str], reasons: dict[str, str], rows: list[tuple[str, str]]) -> str:
    """C placed before include/shims.c: BPFLINK_HAS_<name> 0/1 for every conditional name (C reads presence the way
    Python's _native.has() does), the registry _native reads, and the offset table of layout_rows()."""
    def c_string(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\n", "\\n") + '"'

    out = ["#include <stddef.h>"]
    out += [f"#define {_macro(n)} {0 if n in absent else 1}" for n in names]
    registry = "\n    ".join(c_string(f"{n}\t{reasons.get(n, '')}\n") for n in names)
    out.append(f"static const char *const bpflink_conditional =\n    {registry};")
    out.append("struct bpflink_layout { const char *type; const char *member; size_t offset; size_t size; };")
    out.append("const struct bpflink_layout bpflink_layout_table[] = {")
    out += [f'    {{ "{t}", "{m}", offsetof({t}, {m}), sizeof((({t} *)0)->{m}) }},' for t, m in rows]
    out.append("};")
    out.append("const size_t bpflink_layout_count = sizeof(bpflink_layout_table) / sizeof(bpflink_layout_table[0]);")
    return "\n".join(out) + "\n"


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


def syntax_check(cdef: str, source: str, include_dirs: list[str]) -> subprocess.CompletedProcess[str]:
    """cffi's C source for this cdef, compiled for syntax only (a second or two, no object file)."""
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
        return subprocess.run(args, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})


def check_uapi(cdef: str, source: str, include_dirs: list[str]) -> None:
    """Compile cffi's C source once for syntax only. Members the headers may lack are /*@if*/ blocks, dropped by
    then; a member still missing is one bpflink cannot do without (older than the oldest supported uapi header,
    Linux 6.1's): refuse, naming the header file, its package and the members, instead of one compiler error per
    member later."""
    res = syntax_check(cdef, source, include_dirs)
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


#: bpflink's C, in the order it is compiled after the generated source (each file uses the ones before it)
C_SOURCES = ("shims.c", "ringbuf.c", "drain.c", "linkjson.c")


def c_sources() -> str:
    """include/'s C files (``C_SOURCES``), concatenated as the extension compiles them."""
    return "".join((INCLUDE / name).read_text() for name in C_SOURCES)


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
    names = conditional_names()
    absent = probe_presence(names, config["include_dirs"])
    reasons = absence_reasons(absent, text, version, config["include_dirs"])
    for name in sorted(absent):
        print(f"bpflink build: absent, its features raise NotSupportedError: {name}: {reasons[name]}")
    ffi = FFI()
    cdef = cdef_text(text, absent)
    ffi.cdef(cdef)
    source = (
        HEADERS
        + f'\nstatic const char *const bpflink_build_version = "{_version()}";\n'
        + generated_source(names, absent, reasons, layout_rows(cdef))
        + c_sources()
    )
    check_uapi(cdef, source, config["include_dirs"])
    ffi.set_source(
        "bpflink._ffi",
        source,
        include_dirs=config["include_dirs"],
        extra_objects=config["extra_objects"],
        libraries=[*config["libraries"], "pthread"],  # include/drain.c's thread (part of libc from glibc 2.34)
        library_dirs=config["library_dirs"],
        extra_link_args=config["extra_link_args"],
        extra_compile_args=["-O2", "-Wno-unused-parameter"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE / "build" / "cffi"), verbose="-v" in sys.argv)
