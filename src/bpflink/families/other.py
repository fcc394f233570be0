"""Every attach type no other family claims: ``link_create`` passes the target fd on and the kernel decides.

>>> FAMILY.target
<TargetKind.FD: 'fd'>
"""

from __future__ import annotations

from ._family import Family, TargetKind

FAMILY = Family(name="other", attach_types=(), target=TargetKind.FD)

__all__ = ["FAMILY"]
