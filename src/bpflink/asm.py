"""A few BPF instructions, encoded as ``struct bpf_insn`` bytes: enough for small test and probe programs.

>>> len(mov64_imm(0, 1) + exit_())
16
"""

from __future__ import annotations

import struct

# opcode parts (uapi <linux/bpf.h>, <linux/bpf_common.h>); these are ISA encodings, fixed by the BPF spec
_ALU64, _JMP, _LD, _STX, _ST, _LDX = 0x07, 0x05, 0x00, 0x03, 0x02, 0x01
_K, _X = 0x00, 0x08
_MOV, _ADD, _EXIT, _CALL, _JEQ, _JA = 0xB0, 0x00, 0x90, 0x80, 0x10, 0x00
_DW, _W, _IMM, _MEM, _ATOMIC = 0x18, 0x00, 0x00, 0x60, 0xC0
_PSEUDO_MAP_FD = 1

R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One raw instruction: ``code``, ``dst_reg:4 | src_reg:4``, ``off`` (s16), ``imm`` (s32)."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def mov64_imm(dst: int, imm: int) -> bytes:
    return insn(_ALU64 | _MOV | _K, dst, 0, 0, imm)


def mov64_reg(dst: int, src: int) -> bytes:
    return insn(_ALU64 | _MOV | _X, dst, src)


def add64_imm(dst: int, imm: int) -> bytes:
    return insn(_ALU64 | _ADD | _K, dst, 0, 0, imm)


def st_w(dst: int, off: int, imm: int) -> bytes:
    """``*(u32 *)(dst + off) = imm``."""
    return insn(_ST | _MEM | _W, dst, 0, off, imm)


def ld_map_fd(dst: int, map_fd: int) -> bytes:
    """``dst = map`` (two instructions: a 64-bit immediate load with the map fd)."""
    return insn(_LD | _DW | _IMM, dst, _PSEUDO_MAP_FD, 0, map_fd) + insn(0)


def call(helper_id: int) -> bytes:
    return insn(_JMP | _CALL, 0, 0, 0, helper_id)


def jeq_imm(dst: int, imm: int, off: int) -> bytes:
    return insn(_JMP | _JEQ | _K, dst, 0, off, imm)


def atomic_add64(dst: int, src: int, off: int = 0) -> bytes:
    """``lock *(u64 *)(dst + off) += src``."""
    return insn(_STX | _ATOMIC | _DW, dst, src, off, _ADD)


def exit_() -> bytes:
    return insn(_JMP | _EXIT)


BPF_FUNC_MAP_LOOKUP_ELEM = 1


def return_imm(value: int) -> bytes:
    """``return value;``: the smallest valid program."""
    return mov64_imm(R0, value) + exit_()


def count_and_return(map_fd: int, value: int, key: int = 0) -> bytes:
    """``counter[key] += 1 (array map of u64); return value;``."""
    return (
        st_w(R10, -4, key)
        + mov64_reg(R2, R10) + add64_imm(R2, -4)
        + ld_map_fd(R1, map_fd)
        + call(BPF_FUNC_MAP_LOOKUP_ELEM)
        + jeq_imm(R0, 0, 2)
        + mov64_imm(R1, 1) + atomic_add64(R0, R1)
        + return_imm(value)
    )
