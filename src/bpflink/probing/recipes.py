"""How each link family is tried: every ``Family`` record (``bpflink.families``) holds its own recipe function as
``probe``, giving the ``Recipe`` for one of its attach types (None for one it does not know how to try); this module
lists them by family name for the reader's convenience. ``bpflink.probing`` reads ``record_of(at).probe``.

A recipe loads the smallest program (``asm.return_imm``) and creates a link on a harmless target the trial makes
(``TrialTargets``, which ``probing._harness.Trial`` is): an empty cgroup made for the purpose, the probing
thread's private network namespace (its ``lo`` for XDP, the namespace itself for sk_lookup/flow_dissector/
netfilter), a sockmap nobody uses. Where a full attach is impractical it makes a deliberately invalid request and
reads the errno the way cilium/ebpf does (``proof_errno``): tcx/netkit on ifindex 0xffffffff answer ENODEV when
supported; uprobe_multi on "/" answers EBADF; perf_event on a non-perf fd answers EBADF. Attach types whose
program names a vmlinux BTF target at load are tried by ``bpflink.probing._btf``, not by a recipe.

>>> import errno
>>> from bpflink.enums import AttachType
>>> RECIPES["tcx"](AttachType.TCX_INGRESS).proof_errno == errno.ENODEV
True
"""

from __future__ import annotations

from ..families import all as _all_families
from ..families._family import ProbeRecipe, Recipe, Target, TrialTargets

#: family name -> its recipe function (the families with one)
RECIPES: dict[str, ProbeRecipe] = {f.name: f.probe for f in _all_families() if f.probe is not None}

__all__ = ["RECIPES", "ProbeRecipe", "Recipe", "Target", "TrialTargets"]
