"""``import bpflink`` time: ``python -X importtime -c 'import bpflink'``, several fresh processes, median."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from .common import median


def _rows(code: str, env: dict[str, str]) -> list[tuple[str, str, str, str]]:
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    return re.findall(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", res.stderr)


def measure(runs: int = 9) -> dict[str, Any]:
    """Cumulative µs of the top-level ``bpflink`` import per run (first run discarded: cold page cache).

    Floors from the same runs: ``bpflink._ffi`` (the cffi extension alone, with ``_cffi_backend``), and the
    interpreter's own start-up imports (site, encodings: every top-level row of ``python -c pass``).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with the .pyc files users have
    samples, ffi, startup = [], [], []
    heaviest: dict[str, int] = {}
    for i in range(runs + 1):
        rows = _rows("import bpflink", env)
        total = next(int(cum) for _self, cum, indent, name in rows if name == "bpflink" and indent == " ")
        empty = sum(int(cum) for _self, cum, indent, _name in _rows("pass", env) if indent == " ")
        if i:
            samples.append(total)
            ffi.append(next(int(cum) for _self, cum, _indent, name in rows if name == "bpflink._ffi"))
            startup.append(empty)
            for self_us, _cum, _indent, name in rows:
                heaviest[name] = heaviest.get(name, 0) + int(self_us)
    top = sorted(heaviest.items(), key=lambda kv: -kv[1])[:8]
    return {"runs": runs, "median_ms": median(samples) / 1e3, "min_ms": min(samples) / 1e3,
            "extension_alone_ms": median(ffi) / 1e3, "python_c_pass_ms": median(startup) / 1e3,
            "heaviest_self_ms": {name: us / runs / 1e3 for name, us in top}}
