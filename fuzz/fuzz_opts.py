"""Fuzz the opts-to-C conversion: every ``bpflink.opts`` builder, fed decoded random values, then ``build()``.

The contract: a builder (and its ``build(attach_type)``) returns or raises ``TypeError``/``ValueError``/
``OSError`` — never another exception, a crash or a hang. No syscall is made, so this is safe anywhere.

    python fuzz/fuzz_opts.py -seed=1 -runs=100000        # atheris (libFuzzer, coverage-guided), reproducible
    python fuzz/fuzz_opts.py -max_total_time=600         # atheris, open-ended
    python fuzz/fuzz_opts.py --fallback 30               # no atheris: seeded random bytes for 30 s

Only bpflink's own modules are instrumented for coverage (imported inside ``atheris.instrument_imports``):
instrumenting the whole interpreter costs ~15 s of CPU before the first input and dilutes the coverage signal.
With a fixed ``-seed`` and ``-runs`` libFuzzer's input sequence is fixed, so a CI run is repeatable
(tests/test_fuzz.py::test_atheris_harness_bounded).

The fallback is not coverage-guided, but the input is decoded structurally (which builder, which fields,
what kind of value), so uniform random bytes still reach every builder and every value kind; the hypothesis
properties in tests/test_fuzz.py cover the same ground with shrinking.
"""

from __future__ import annotations

import array
import dataclasses
import random
import sys
import time
from typing import Any

ALLOWED = (TypeError, ValueError, OSError)
BUILDERS: list[Any] = []
ATTACH_TYPES: list[Any] = []
opts: Any = None


def load() -> str:
    """Import bpflink (inside atheris' import hook when fuzzing) and list the builders; returns the version."""
    global opts
    import bpflink
    from bpflink import AttachType
    from bpflink import opts as opts_module
    from bpflink.opts import LinkOpts

    opts = opts_module
    BUILDERS[:] = sorted((c for c in vars(opts).values()
                          if isinstance(c, type) and issubclass(c, LinkOpts) and c is not LinkOpts
                          and dataclasses.is_dataclass(c)), key=lambda c: c.__name__)
    ATTACH_TYPES[:] = [at for at in AttachType if at.available]
    return str(bpflink.__version__)


class Bytes:
    """Consumes fuzzer bytes: small ints, then values of every kind a caller could pass."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def integer(self) -> int:
        kind = self.byte() % 8
        raw = int.from_bytes(self.take(1 << (kind % 4)), "little", signed=kind >= 4)
        return [raw, -raw, raw << 64, (1 << 32) - raw, (1 << 64) - raw, raw, raw - (1 << 31), 1 << 20][self.byte() % 8]

    def length(self) -> int:
        b = self.byte()
        return (1 << 20) + (b & 1) if b == 255 else b % 8  # rarely the kernel's cap and one past it

    def text(self) -> str:
        return self.take(self.byte() % 24).decode("utf-8", "surrogateescape")  # NULs and lone surrogates too

    def value(self, depth: int = 0) -> Any:
        kind = self.byte() % (14 if depth < 2 else 9)
        if kind == 0:
            return None
        if kind == 1:
            return bool(self.byte() & 1)
        if kind in (2, 3):
            return self.integer()
        if kind == 4:
            return self.text()
        if kind == 5:
            return self.take(self.byte() % 24)
        if kind == 6:
            return float(self.integer()) / 3
        if kind == 7:
            return object()
        if kind == 8:
            return opts.ProgId(self.byte() + 1) if self.byte() & 1 else opts.LinkId(self.byte() + 1)
        n = self.length()
        if kind == 9:
            item = self.value(depth + 1)
            return [item] * n
        if kind == 10:
            return array.array("Q", [self.byte()]) * n
        if kind == 11:
            return tuple(self.value(depth + 1) for _ in range(min(n, 8)))
        if kind == 12:
            return [self.text() for _ in range(min(n, 8))]
        return {self.text(): self.value(depth + 1)}


def one_input(data: bytes) -> None:
    src = Bytes(data)
    cls = BUILDERS[src.byte() % len(BUILDERS)]
    fields = [f.name for f in dataclasses.fields(cls)]
    args = [src.value() for _ in range(src.byte() % 3)]
    kwargs = {name: src.value() for name in fields if src.byte() & 1}
    if src.byte() % 16 == 0:
        kwargs[src.text() or "x"] = src.value()  # an unknown keyword
    try:
        built = cls(*args, **kwargs)
    except ALLOWED:
        return
    at = ATTACH_TYPES[src.byte() % len(ATTACH_TYPES)]
    try:
        built.build(at)
    except ALLOWED:
        return


def fallback(seconds: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    deadline, runs = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        one_input(rng.randbytes(rng.randrange(1, 256)))
        runs += 1
    return runs


def banner(version: str) -> None:
    print(f"bpflink {version}: fuzzing {', '.join(c.__name__ for c in BUILDERS)}", file=sys.stderr)


def main() -> None:
    if len(sys.argv) >= 2 and sys.argv[1] == "--fallback":
        banner(load())
        runs = fallback(float(sys.argv[2]) if len(sys.argv) > 2 else 30)
        print(f"fallback: {runs} inputs, no failure", file=sys.stderr)
        return
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    with atheris.instrument_imports(include=["bpflink"]):  # coverage of bpflink's builders, not of the stdlib
        version = load()
    banner(version)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
