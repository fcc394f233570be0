"""Kept so that imports of ``bpflink.opts.mprog`` work: the code is in the tcx, netkit and cgroup family modules."""

from ..families._mprog import Mprog as _Mprog  # noqa: F401
from ..families.cgroup import Cgroup, _kernel_orders_cgroups  # noqa: F401
from ..families.netkit import Netkit
from ..families.tcx import Tcx

__all__ = ["Cgroup", "Netkit", "Tcx"]
