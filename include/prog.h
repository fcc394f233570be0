/* bpflink cdef: program loading (<bpf/bpf.h>) and the object API (<bpf/libbpf.h>). */
struct bpf_insn { ...; };
struct bpf_prog_load_opts {
    size_t sz;
    enum bpf_attach_type expected_attach_type;
    __u32 prog_flags;
    __u32 attach_btf_id;
    __u32 attach_prog_fd;
    __u32 attach_btf_obj_fd;
    __u32 log_level;
    __u32 log_size;
    char *log_buf;
    __u32 log_true_size;
    ...;
};
int bpf_prog_load(enum bpf_prog_type prog_type, const char *prog_name, const char *license,
                  const struct bpf_insn *insns, size_t insn_cnt, struct bpf_prog_load_opts *opts);

struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_object *bpf_object__open_file(const char *path, const void *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
enum bpf_prog_type bpf_program__type(const struct bpf_program *prog);
enum bpf_attach_type bpf_program__expected_attach_type(const struct bpf_program *prog);
const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
bool bpf_map__autocreate(const struct bpf_map *map);
long libbpf_get_error(const void *ptr);
__u32 libbpf_major_version(void);
__u32 libbpf_minor_version(void);
const char *libbpf_version_string(void);
__u32 bpf_map__key_size(const struct bpf_map *map);
__u32 bpf_map__value_size(const struct bpf_map *map);
/* freplace: the EXT program's target (program fd + global function name), set before bpf_object__load */
int bpf_program__set_attach_target(struct bpf_program *prog, int attach_prog_fd, const char *attach_func_name);
/* BTF of a loaded program (<bpf/btf.h>): find a function's BTF id for opts.Freplace(target_btf_id=...) */
struct btf;
struct btf *btf__load_from_kernel_by_id(__u32 id);
__s32 btf__find_by_name_kind(const struct btf *btf, const char *type_name, __u32 kind);
void btf__free(struct btf *btf);
#define BTF_KIND_FUNC ...
/* struct_ops values (struct_ops.py): member offsets of the kernel's bpf_struct_ops_<name> from vmlinux BTF */
struct btf_type { __u32 name_off; __u32 info; ...; };
struct btf_member { __u32 name_off; __u32 type; __u32 offset; };
struct btf *btf__load_vmlinux_btf(void);
const struct btf_type *btf__type_by_id(const struct btf *btf, __u32 id);
const char *btf__name_by_offset(const struct btf *btf, __u32 offset);
__s64 btf__resolve_size(const struct btf *btf, __u32 type_id);
#define BTF_KIND_STRUCT ...
/* a struct_ops map needs a user BTF fd beside its vmlinux value type (the struct_ops probe writes a tiny one) */
struct btf *btf__new_empty(void);
int btf__add_int(struct btf *btf, const char *name, size_t byte_sz, int encoding);
int btf__load_into_kernel(struct btf *btf);
int btf__fd(const struct btf *btf);
/* Program(fd) asks the kernel whether fd is a program: BPF_PROG_BIND_MAP fails with EINVAL for a non-program
 * before it looks at the map fd (EBADF for -1) and changes nothing (program.py) */
int bpf_prog_bind_map(int prog_fd, int map_fd, const void *opts);
