"""Kept for the modules that import the range checks from here; they live in ``bpflink._limits``."""

from .._limits import S32_MAX, S32_MIN, U32_MAX, U64_MAX, integer, s32, u32, u64

__all__ = ["S32_MAX", "S32_MIN", "U32_MAX", "U64_MAX", "integer", "s32", "u32", "u64"]
