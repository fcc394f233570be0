"""bench/ringbuf.py's pieces run with a small count (no timing asserted): the C consumer builds against
build/libbpf and counts every record, and each bpflink and ctypes consumer takes exactly the records produced."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench import ringbuf as bench

# building the C consumer and the bench's object is host work (the guests skip tests/test_bench_smoke.py too);
# the consumers' behaviour on each kernel is covered by tests/test_ringbuf.py and tests/test_perfbuf.py
pytestmark = pytest.mark.hostonly


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return bench.build(tmp_path_factory.mktemp("ringbuf-bench"))


@pytest.mark.parametrize("kind", ["rb", "pb"])
def test_every_consumer_takes_every_record(built: tuple[Path, Path], kind: str) -> None:
    pytest.importorskip("numpy")
    obj, exe = built
    setup = bench.Setup(obj)
    try:
        for variant in ("c", "c-copy", *bench.PY_VARIANTS, *bench.DRAIN_ONLY):
            res = bench.drain(exe, setup, kind, 16, 300, 64, variant)
            assert res["records"] == 300 and res["lost"] == 0, (variant, res)
        for variant in ("c", "batch", "ctypes", *(bench.LIVE_PERF_ONLY if kind == "pb" else ())):
            res = bench.live(exe, setup, kind, 256, 200, 64, variant)
            assert res["records"] + res["dropped"] == 200, (variant, res)
    finally:
        setup.close()


def test_ratio_table_and_the_maps_part_run(built: tuple[Path, Path]) -> None:
    """What ``bench/run`` (python -m bench) prints for the data path: the ratios against C from one tiny run of
    each side, and the maps part end to end."""
    pytest.importorskip("numpy")
    from bench import maps as mapsbench

    obj, exe = built
    setup = bench.Setup(obj)
    try:
        runs = {v: [bench.drain(exe, setup, "rb", 16, 300, 64, v)]
                for v in ("c", "c-copy", *bench.PY_VARIANTS, *bench.DRAIN_ONLY)}
    finally:
        setup.close()
    r = {"drain_rb16": bench._summary(runs, 300), "loadavg_before": (0.0,), "loadavg_after": (0.0,), "rounds": 1}
    ratios = bench.goals(r)["rb16"]
    assert set(ratios) >= {"batch/C", "numpy/C", "callback/ctypes"} and all(v and v > 0 for v in ratios.values())
    assert "batch/C" in bench.table(r)
    out = mapsbench.run(entries=2000, rounds=1, lookups=200, chunk=512)
    assert out["entries"] == 2000 and all(v > 0 for v in out["ratios"].values())
    assert "numpy_batch / c_batch" in mapsbench.table(out)
