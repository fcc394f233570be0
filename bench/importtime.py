"""``import bpflink`` time: ``python -X importtime -c 'import bpflink'``, several fresh processes, median."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

from .common import median


def measure(runs: int = 9) -> dict[str, Any]:
    """Cumulative µs of the top-level ``bpflink`` import per run (first run discarded: cold page cache)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with the .pyc files users have
    samples = []
    heaviest: dict[str, int] = {}
    for i in range(runs + 1):
        res = subprocess.run([sys.executable, "-X", "importtime", "-c", "import bpflink"], capture_output=True,
                             text=True, env=env, check=True)
        rows = re.findall(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", res.stderr)
        total = next(int(cum) for _self, cum, indent, name in rows if name == "bpflink" and indent == " ")
        if i:
            samples.append(total)
            for self_us, _cum, _indent, name in rows:
                heaviest[name] = heaviest.get(name, 0) + int(self_us)
    top = sorted(heaviest.items(), key=lambda kv: -kv[1])[:8]
    return {"runs": runs, "median_ms": median(samples) / 1e3, "min_ms": min(samples) / 1e3,
            "heaviest_self_ms": {name: us / runs / 1e3 for name, us in top}}
