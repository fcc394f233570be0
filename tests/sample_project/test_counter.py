"""A sample user project's smoke tests with bpflink's pytest plugin: nothing here but the tests."""

import os
import socket

import pytest

import bpflink
from bpflink import AttachType, opts

SEND_UDP = ["python3", "-c", "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "[s.sendto(b'x', ('127.0.0.1', 9)) for _ in range(5)]"]


def test_cgroup_counter(bpf_cgroup, bpf_object):
    obj = bpf_object("counter.bpf.c", programs=["count_egress"])
    with obj.program("count_egress") as prog, obj.map("packets") as packets, \
            bpflink.link_create(prog, bpf_cgroup.fd, AttachType.CGROUP_INET_EGRESS):
        assert bpf_cgroup.run(SEND_UDP).returncode == 0
        assert packets.lookup_int(0) == 5


@pytest.mark.bpf_requires("kprobe_multi")
def test_kprobe_multi_counts_my_calls(bpf_object):
    obj = bpf_object("counter.bpf.c", programs=["count_calls"])
    with obj.program("count_calls") as prog, obj.map("calls") as calls, \
            bpflink.link_create(prog, None, AttachType.TRACE_KPROBE_MULTI,
                                opts.KprobeMulti(syms=["security_task_getsid"])):
        for _ in range(3):
            os.getsid(os.getpid())  # getsid of an explicit pid goes through the security hook
        assert calls.lookup_int(os.getpid()) == 3


def test_netns_sees_only_its_own_devices(bpf_netns):
    with bpf_netns:
        assert [name for _, name in socket.if_nameindex()] == ["lo"]
    assert bpf_netns.run(socket.if_nametoindex, "lo") == 1
