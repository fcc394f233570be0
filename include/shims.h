/* bpflink cdef: our own C helpers, implemented in include/shims.c. */
static const char *const bpflink_build_version;

/* offsetof/sizeof of every member whose layout cffi cannot take from the compiler itself */
struct bpflink_layout { const char *type; const char *member; size_t offset; size_t size; };
extern const struct bpflink_layout bpflink_layout_table[];
extern const size_t bpflink_layout_count;

/* libbpf's print callback takes a va_list: format it in C, hand Python the finished line */
extern "Python" void _bpflink_on_libbpf_print(int level, const char *msg);
void bpflink_route_libbpf_print(int enable);

/* bpf_link_create(prog_fd, target_fd, attach_type, NULL): link_create's no-opts hot path, called through its
   address by bpflink._fdowner (include/fdowner.c) */
int bpflink_link_create_noopts(int prog_fd, int target_fd, int attach_type);

/* a batch of the link walk of `bpflink list` (include/shims.c) */
int bpflink_link_walk(__u32 start_id, struct bpf_link_info *infos, int *fds, int max, __u32 *last_id, int *done);
