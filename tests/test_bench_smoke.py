"""The bench's C baseline builds against build/libbpf and one create+close iteration runs on a real cgroup
(the full benchmark, bench/run, is too slow for the test suite)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bpflink import AttachType, Program, ProgType, asm, link_create
from conftest import ROOT

sys.path.insert(0, str(ROOT))
from bench.common import build_baseline, run_baseline

EGRESS = AttachType.CGROUP_INET_EGRESS


def test_c_baseline_builds_and_one_iteration_runs(cgroup: Path, tmp_path: Path) -> None:
    exe = build_baseline(tmp_path)
    with Program.load(ProgType.CGROUP_SKB, asm.return_imm(1), expected_attach_type=EGRESS) as prog:
        cg = os.open(cgroup, os.O_RDONLY | os.O_CLOEXEC)
        try:
            rows = run_baseline(exe, ["loop", prog.fd, cg, int(EGRESS), 1], [prog.fd, cg])
            assert len(rows) == 1 and all(int(ns) > 0 for ns in rows[0])  # create_ns, close_ns
            # the baseline exits non-zero when bpf_link_create fails: a wrong attach type must be refused
            with pytest.raises(RuntimeError, match="bpf_link_create"):
                run_baseline(exe, ["loop", prog.fd, cg, int(AttachType.TCX_INGRESS), 1], [prog.fd, cg])
            # and its link was closed: the cgroup is free for ours (a link of the same program would be EEXIST)
            with link_create(prog, cg, EGRESS) as link:
                assert link.info().prog_id == prog.id
        finally:
            os.close(cg)
