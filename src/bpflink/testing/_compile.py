"""``compile_bpf``: a ``.bpf.c`` compiled with clang into a cached ``.bpf.o``.

The cache key hashes the source, every header next to it, the flags, the include directories' headers and
clang's version; objects live in ``$BPFLINK_CACHE_DIR/objects`` (default ``${XDG_CACHE_HOME:-~/.cache}/bpflink``),
or, where that is not writable (a QEMU guest sees the host read-only), in a per-user temporary directory; an
object already in the main cache is used from there read-only, so guests reuse what the host compiled.

>>> # not run as a doctest: needs that source file and clang
>>> obj = compile_bpf("tests/counter.bpf.c")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

_ARCH = {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "powerpc", "s390x": "s390",
         "riscv64": "riscv", "loongarch64": "loongarch"}


class CompileError(RuntimeError):
    """clang refused the source; the message holds its diagnostics."""


def cache_dir() -> Path:
    """``$BPFLINK_CACHE_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/bpflink``."""
    env = os.environ.get("BPFLINK_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "bpflink"


@functools.lru_cache(maxsize=1)
def clang() -> str:
    found = os.environ.get("BPFLINK_CLANG") or shutil.which("clang")
    if not found:
        raise FileNotFoundError("clang is missing (apt-get install clang; or set BPFLINK_CLANG)")
    return found


@functools.lru_cache(maxsize=1)
def bpf_include_dirs() -> tuple[str, ...]:
    """Where ``<bpf/bpf_helpers.h>`` comes from: ``$BPFLINK_BPF_INCLUDE``, else the libbpf headers bpflink was
    built with (a source checkout's build/libbpf/include), else the system's (/usr/include/bpf, libbpf-dev);
    plus the multiarch include dir for ``<asm/types.h>``."""
    dirs: list[str] = []
    env = os.environ.get("BPFLINK_BPF_INCLUDE")
    if env:
        dirs.extend(p for p in env.split(os.pathsep) if p)
    else:
        import bpflink

        tree = Path(bpflink.__file__).resolve().parents[2] / "build" / "libbpf" / "include"
        if (tree / "bpf" / "bpf_helpers.h").exists():
            dirs.append(str(tree))
        elif not Path("/usr/include/bpf/bpf_helpers.h").exists():
            raise FileNotFoundError("no <bpf/bpf_helpers.h>: apt-get install libbpf-dev, or set BPFLINK_BPF_INCLUDE")
    try:
        triplet = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        triplet = f"{platform.machine()}-linux-gnu"
    if triplet and os.path.isdir(f"/usr/include/{triplet}"):
        dirs.append(f"/usr/include/{triplet}")
    return tuple(dirs)


@functools.lru_cache(maxsize=1)
def _clang_version() -> bytes:
    return subprocess.run([clang(), "--version"], capture_output=True, timeout=60).stdout


def compile_bpf(source: str | os.PathLike[str], *, cflags: Sequence[str] = (),
                include: Sequence[str | os.PathLike[str]] = ()) -> Path:
    """Compile ``source`` (``clang -O2 -g -target bpf``) and return the cached object's path.

    ``cflags``: extra flags (``-DFOO=1``); ``include``: extra include directories. Raises ``CompileError`` with
    clang's diagnostics.
    """
    src = Path(source).resolve()
    if not src.is_file():
        raise FileNotFoundError(f"no BPF source at {src}")
    incs = [str(Path(i).resolve()) for i in include] + list(bpf_include_dirs())
    arch = _ARCH.get(platform.machine(), platform.machine())
    flags = ["-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{arch}", *cflags, *(f"-I{i}" for i in incs)]
    key = hashlib.sha256(repr(flags).encode() + b"\0" + _clang_version())
    key.update(src.read_bytes())
    for header in sorted(src.parent.glob("*.h")):
        key.update(header.name.encode() + b"\0" + header.read_bytes())
    for inc in incs:
        for header in sorted(Path(inc).glob("bpf/*.h")):
            key.update(header.read_bytes())
    name = f"{src.name.removesuffix('.c').removesuffix('.bpf')}-{key.hexdigest()[:16]}.bpf.o"
    main = cache_dir() / "objects" / name
    if main.exists():
        return main
    for where in (main.parent, Path(tempfile.gettempdir()) / f"bpflink-objects-{os.getuid()}"):
        try:
            where.mkdir(parents=True, exist_ok=True)
            if not os.access(where, os.W_OK):
                continue
        except OSError:
            continue
        out = where / name
        if out.exists():
            return out
        tmp = where / f".{name}.{os.getpid()}.tmp"
        res = subprocess.run([clang(), *flags, "-c", str(src), "-o", str(tmp)], capture_output=True, text=True,
                             timeout=600)
        if res.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise CompileError(f"clang failed on {src}:\n{res.stderr}")
        os.replace(tmp, out)  # atomic: a parallel worker compiling the same source just replaces it
        return out
    raise PermissionError(f"no writable cache directory for BPF objects ({main.parent}, {tempfile.gettempdir()})")
