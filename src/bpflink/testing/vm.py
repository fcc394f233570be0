"""The QEMU kernel runner: boot one of the pinned Debian kernels bpflink's own matrix uses and run a command in it.

The guest sees the host's ``/`` read-only over 9p (so your venv, bpflink's compiled extension, clang and your
project run unchanged), a writable ``/tmp``, bpffs/tracefs/cgroup2 mounted, and runs the command as root in the
project directory. TCG unless KVM really works. Kernels are downloaded from Debian's archive through a private
apt configuration (never installed, never touching the machine's apt sources) into the cache dir:
``$BPFLINK_VM_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/bpflink/vm``. Needs qemu-system-x86, busybox-static, kmod,
cpio, apt-get and dpkg-deb on the host.

>>> # not run as a doctest: boots a QEMU guest (downloads a kernel, ~10 s under TCG)
>>> run("6.12", "uname -r")  # doctest: +SKIP
0

The runner's pieces ship as package data next to this module (``vmdata/``: ``vmtest``, ``vm-init``,
``vm-kernels.txt``, the pins).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

DATA = Path(__file__).resolve().parent / "vmdata"
RUNNER = DATA / "vmtest"
PINS = DATA / "vm-kernels.txt"
#: exit status when the guest reported none (boot failure, timeout)
NO_STATUS = 125


def kernels() -> list[str]:
    """The pinned kernel names (``6.1``, ``6.12``, ``7.3``...)."""
    out = []
    for line in PINS.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and not line.startswith("#") and parts[0] != "iproute2":
            out.append(parts[0])
    return out


def select(names: Sequence[str]) -> list[str]:
    """``["6.12,7.3"]``, ``["all"]`` -> pinned names, in order, without repeats; ValueError for an unknown one."""
    known = kernels()
    wanted: list[str] = []
    for raw in names:
        for name in raw.split(","):
            name = name.strip()
            if not name:
                continue
            for one in known if name == "all" else [name]:
                if one not in known:
                    raise ValueError(f"no pinned kernel {one!r} (have: {', '.join(known)}, or 'all')")
                if one not in wanted:
                    wanted.append(one)
    if not wanted:
        raise ValueError(f"no kernel given (have: {', '.join(known)}, or 'all')")
    return wanted


def cache_dir() -> Path:
    """``$BPFLINK_VM_DIR`` or ``${XDG_CACHE_HOME:-~/.cache}/bpflink/vm``."""
    env = os.environ.get("BPFLINK_VM_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "bpflink" / "vm"


def missing_tools() -> list[str]:
    """What the runner needs on the host and is not there (Debian package names)."""
    need = {"qemu-system-x86_64": "qemu-system-x86", "busybox": "busybox-static", "depmod": "kmod", "cpio": "cpio",
            "apt-get": "apt", "dpkg-deb": "dpkg"}
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [pkg for tool, pkg in need.items() if shutil.which(os.environ.get("VM_QEMU", tool) if tool.startswith("qemu")
                                                               else tool, path=path) is None]


def _env(project: str | os.PathLike[str] | None, python: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VM_DIR", str(cache_dir()))
    env["BPFLINK_VM_PROJECT"] = os.fspath(project) if project is not None else os.getcwd()
    if python is not None:  # the runner takes a venv dir: <venv>/bin/python
        env.setdefault("BPFLINK_VENV", str(Path(python).parent.parent))
    return env


def fetch(names: Sequence[str], *, stdout: IO[str] | None = None) -> None:
    """Download and prepare ``names`` (cached; done once before parallel boots)."""
    missing = missing_tools()
    if missing:
        raise FileNotFoundError(f"the kernel runner needs: apt-get install {' '.join(missing)}")
    res = subprocess.run(["bash", str(RUNNER), "--fetch", *names], env=_env(None, None), stdout=stdout,
                         stderr=subprocess.STDOUT if stdout is not None else None, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"fetching kernels {' '.join(names)} failed (exit {res.returncode})")


def run(kernel: str, command: str, *, rwdir: str | os.PathLike[str] | None = None,
        project: str | os.PathLike[str] | None = None, python: str | None = None, timeout: float | None = None,
        stdout: IO[str] | None = None) -> int:
    """Run the shell line ``command`` as root in a guest booting ``kernel``, in ``project`` (default: the current
    directory); its exit status, 125 when the guest reported none. ``rwdir``: a host directory writable in the
    guest at the same path (results). ``stdout``: where the guest's console goes (default: inherited)."""
    if kernel not in kernels():
        raise ValueError(f"no pinned kernel {kernel!r} (have: {', '.join(kernels())})")
    missing = missing_tools()
    if missing:
        raise FileNotFoundError(f"the kernel runner needs: apt-get install {' '.join(missing)}")
    env = _env(project, python)
    if timeout is not None:
        env["VM_TIMEOUT"] = str(int(timeout))
    args = ["bash", str(RUNNER), "--kernel", kernel]
    if rwdir is not None:
        args += ["--rwdir", os.fspath(rwdir)]
    res = subprocess.run([*args, "--", command], env=env, stdout=stdout,
                         stderr=subprocess.STDOUT if stdout is not None else None, text=True)
    return res.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """``bpflink vm --kernel 6.12 [--kernel 7.3 | --kernel all] -- CMD...``: CMD in each guest in turn; the
    first non-zero exit status (or 0)."""
    parser = argparse.ArgumentParser(prog="bpflink vm", description="Run a command as root in QEMU guests booting "
                                     "the pinned Debian kernels (the host's / read-only, the current dir as cwd).")
    parser.add_argument("--kernel", action="append", required=True, metavar="NAME",
                        help=f"one of {', '.join(kernels())} or 'all' (repeatable, comma-separated)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per guest (default 600)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    cmd = list(args.command)
    if cmd[:1] == ["--"]:
        cmd = cmd[1:]
    if not cmd:
        parser.error("no command given (bpflink vm --kernel 6.12 -- CMD...)")
    try:
        names = select(args.kernel)
    except ValueError as exc:
        parser.error(str(exc))
    import shlex

    line = cmd[0] if len(cmd) == 1 else shlex.join(cmd)
    worst = 0
    for name in names:
        sys.stdout.flush()
        rc = run(name, line, timeout=args.timeout)
        if len(names) > 1:
            print(f"bpflink vm: {name}: exit {rc}", file=sys.stderr)
        worst = worst or rc
    return worst
