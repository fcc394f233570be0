/* bpflink cdef: struct bpf_link_info (uapi). The per-type union is decoded in info.py. */
struct bpf_link_info {
    __u32 type;
    __u32 id;
    __u32 prog_id;
    ...;
};
struct bpf_prog_info {
    __u32 type;
    __u32 id;
    char name[...];
    ...;
};
int bpf_prog_get_info_by_fd(int prog_fd, struct bpf_prog_info *info, __u32 *info_len);
int bpf_prog_get_fd_by_id(__u32 id);
int bpf_prog_get_next_id(__u32 start_id, __u32 *next_id);
