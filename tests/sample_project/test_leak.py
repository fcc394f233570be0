"""A test that forgets a link: bpf_no_leaks fails it, naming the link."""

import bpflink
from bpflink import AttachType

forgotten = []


def test_forgets_its_link(bpf_no_leaks, bpf_cgroup, bpf_object):
    obj = bpf_object("counter.bpf.c", programs=["count_egress"])
    with obj.program("count_egress") as prog:
        forgotten.append(bpflink.link_create(prog, bpf_cgroup.fd, AttachType.CGROUP_INET_EGRESS))
