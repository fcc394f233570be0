/* bpflink cdef: `bpflink list --json` formatted in C (include/linkjson.c), driven by bpflink._rawinfo */
struct bpflink_json_names {
    const char *const *attach;
    __u32 n_attach;
    const char *const *link;
    __u32 n_link;
    const char *const *perf;
    __u32 n_perf;
    __u32 name_max;
};
struct bpflink_json_walk {
    __u32 next_start;
    int first;
    int done;
    int pending_fd;
    size_t len;
    size_t need;
    struct bpf_link_info pending;
};
int bpflink_link_walk_json(struct bpflink_json_walk *st, const struct bpflink_json_names *names, char *buf,
                           size_t cap);
size_t bpflink_json_string(const char *s, size_t n, char *out, size_t cap);
size_t bpflink_json_u64s(const __u64 *a, size_t n, const char *inner, size_t inner_len, const char *indent,
                         size_t indent_len, char *out, size_t cap);
