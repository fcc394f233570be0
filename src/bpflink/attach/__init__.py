"""Attach by section name and by symbol: the convenience layer. Every call returns a ``bpflink.Link``.

Section names (``obj.attach(name)``, ``obj.attach_all()``, ``attach_program(prog)``): libbpf's conventions,
``tracepoint/CAT/NAME`` (``tp/``), ``raw_tp/NAME`` (``raw_tracepoint/``, ``.w``), ``tp_btf/``, ``fentry/``,
``fexit/``, ``fmod_ret/``, ``fsession/``, ``lsm/``, ``kprobe/FUNC[+OFF]``, ``kretprobe/``, ``kprobe.multi/GLOB``,
``kretprobe.multi/``, ``kprobe.session/``, ``ksyscall/NAME``, ``kretsyscall/``, ``uprobe/BINARY:FUNC[+OFF]``,
``uretprobe/``, ``uprobe.multi/BINARY:GLOB``, ``uretprobe.multi/``, ``uprobe.session/``, ``iter/``; and with
``target=``: ``cgroup*/...``, ``lsm_cgroup/``, ``sockops``, ``xdp``, ``tcx/ingress|egress``,
``netkit/primary|peer``, ``sk_lookup``, ``flow_dissector`` (a netns), ``sk_msg``, ``sk_skb/...`` (a sockmap),
``perf_event`` (a perf event, or ``event=``/``freq=``/``period=`` to sample on every CPU), ``netfilter``
(``opts=``). ``struct_ops`` callbacks attach through their map.

Single-call helpers (``prog`` is a ``Program`` or an fd):

- ``tracepoint(prog, "sched:sched_process_exec", cookie=0)``: a perf-event tracepoint.
- ``raw_tracepoint(prog, "sched_switch", cookie=0)``: ``BPF_RAW_TRACEPOINT_OPEN`` (``None`` for tp_btf...).
- ``kprobe(prog, func, offset=0, cookie=0, retprobe=False, maxactive=0)``, ``kretprobe(prog, func, ...)``:
  kprobe/kretprobe through the kprobe PMU.
- ``ksyscall(prog, "openat", retprobe=False)``: the architecture's syscall wrapper (prefix found by trial).
- ``kprobe_multi(prog, "tcp_*" | [names], best_effort=...)``: globs over available_filter_functions.
- ``resolve(patterns)``: the kprobe doctor, attached/skipped and why for every name.
- ``uprobe(prog, binary, func=None, offset=0, pid=None, cookie=0, ref_ctr_offset=0)``, ``uretprobe(...)``:
  ``binary`` a path or a library name, ``func`` may be ``FUNC@LIB`` or versioned.
- ``uprobe_multi(prog, binary, "glob" | [names], ...)``: one uprobe_multi link (kernel >= 6.6).
- ``uprobe_in(prog, binary, func, pids)``: per container, once per distinct (dev, inode).
- ``perf_sample(prog, "cpu-clock", freq=99 | period=N, pid=-1, cpus=None)``: sampling perf events on every
  CPU (or a task) as one Link owning them.
- ``LinkGroup.attach({name: maker})``, ``group.close()``: all-or-nothing attach, parallel close.

A link built on a perf event owns it: ``link.perf_event`` (``link.perf_events`` for every CPU) is closed with
the link. Binary and library names resolve through ``bpflink.targets`` (also inside other mount namespaces).

>>> from bpflink.attach import tracepoint, uprobe
>>> # not run as a doctest: needs a loaded tracepoint/uprobe program `prog` (tests/test_attach.py)
>>> link = tracepoint(prog, "sched:sched_process_exec")  # doctest: +SKIP
>>> link = uprobe(prog, "libc.so.6", "malloc", pid=4242)  # doctest: +SKIP
"""

from .group import LinkGroup
from .legacy import MODES, LegacyLink, LegacyLinkInfo
from .perf import EVENTS, online_cpus, perf_sample
from .sections import ProgSpec, attach_program, auto_attachable, section_types, spec_of
from .tracing import (
                      KprobeReport,
                      ProbeVerdict,
                      kprobe,
                      kprobe_multi,
                      kretprobe,
                      ksyscall,
                      perf_link,
                      raw_tracepoint,
                      resolve,
                      syscall_prefix,
                      tracepoint,
)
from .uprobe import resolve_probe, uprobe, uprobe_in, uprobe_multi, uretprobe

__all__ = ["EVENTS", "MODES", "KprobeReport", "LegacyLink", "LegacyLinkInfo",
           "LinkGroup", "ProbeVerdict", "ProgSpec", "attach_program", "auto_attachable",
           "kprobe", "kprobe_multi", "kretprobe", "ksyscall", "online_cpus", "perf_link", "perf_sample",
           "raw_tracepoint", "resolve", "resolve_probe", "section_types", "spec_of", "syscall_prefix",
           "tracepoint", "uprobe", "uprobe_in", "uprobe_multi", "uretprobe"]
