/* bpflink cdef: kernel integer types. "int..." lets the compiler pick the width from the real headers. */
typedef int... __u8;
typedef int... __u16;
typedef int... __u32;
typedef int... __u64;
typedef int... __s32;
typedef int... __s64;
