"""Run by scripts/test-wheel-chroot inside a clean root that has nothing but python3, pip, cffi and the wheel.

Creates a real cgroup link and shows its effect: a cgroup_skb egress program that counts and drops every packet
(``asm.count_and_return(counter, 0)``) on a fresh cgroup. UDP datagrams sent to 127.0.0.1 from a process in the
cgroup arrive before the link, are dropped and counted while it exists, and arrive again after it is closed.
The last line printed is a JSON object that tests/test_wheel.py checks. Not a pytest module (no ``test_`` name).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys

import bpflink
from bpflink import AttachType, Map, Program, ProgType, asm, link_create

EGRESS = AttachType.CGROUP_INET_EGRESS
CGROUP2 = os.environ.get("BPFLINK_CGROUP2", "/sys/fs/cgroup/unified")


def send_from(cgroup: str, n: int) -> int:
    """Fork a child that joins ``cgroup`` and sends ``n`` datagrams; return how many arrived."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(0.3)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as procs:
                    procs.write(str(os.getpid()))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                    for _ in range(n):
                        with contextlib.suppress(OSError):  # a dropped egress packet may surface as EPERM
                            tx.sendto(b"x", rx.getsockname())
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        got = 0
        while True:
            try:
                rx.recv(16)
                got += 1
            except socket.timeout:
                return got


def main() -> None:
    probe = subprocess.run([sys.executable, "-m", "bpflink", "probe"], capture_output=True, text=True)
    print(probe.stdout + probe.stderr)
    cgroup = os.path.join(CGROUP2, f"bpflink-wheel-{os.getpid()}")
    os.mkdir(cgroup)
    try:
        before = send_from(cgroup, 5)
        with Map.array() as counter, Program.load(
            ProgType.CGROUP_SKB, asm.count_and_return(counter.fd, 0), expected_attach_type=EGRESS
        ) as prog, link_create(prog, cgroup, EGRESS) as link:
            during = send_from(cgroup, 5)
            counted = counter.lookup_int(0)
            link_type = link.info().type.name
        after = send_from(cgroup, 5)
    finally:
        os.rmdir(cgroup)
    result = {
        "version": bpflink.__version__, "libbpf": bpflink.libbpf_version(), "module": bpflink.__file__,
        "probe_rc": probe.returncode, "before": before, "during": during, "counted": counted, "after": after,
        "link_type": link_type,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
