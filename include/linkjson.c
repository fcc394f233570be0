/* `bpflink list --json` in C: the link walk of include/shims.c, each link's info formatted straight into the
 * JSON list element text the Python writer (cli.py's _json(link_dict(fd), "  ")) prints for it. Compiled into
 * bpflink._ffi after shims.c. Names (link types, attach types, perf event types) come from Python
 * (bpflink._rawinfo builds them from the compiled headers' enum tables), so both paths name things alike.
 *
 * Memory: the text goes into the caller's buffer through a writer that never writes past its capacity; each
 * link's worst-case text size is computed from its first info call (name buffers and array counts, the same
 * sizes the second call's buffers get) before anything is written, and a link that does not fit is left for
 * the next call (or its size reported when it alone exceeds the buffer). Second-call buffers are malloc'ed
 * from the first call's sizes and freed on every path. */
#include <stdlib.h>

/* Which optional members and constants the headers have. build_ffi.py's presence probe defines
 * BPFLINK_HAS_<name> (0/1) for what the declarations in include/ mark optional; a build without it has
 * what include/info.h declares, the members it marks for newer libbpf uapi copies following the libbpf
 * version. A link type whose members are absent is left to the Python path. */
#define BPFLINK_JSON_LIBBPF_AT_LEAST(min) (LIBBPF_MAJOR_VERSION > 1 || LIBBPF_MINOR_VERSION >= (min))
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event
#define BPFLINK_HAS_struct_bpf_link_info_perf_event 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_cookie
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_cookie 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_ref_ctr_offset
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_ref_ctr_offset BPFLINK_JSON_LIBBPF_AT_LEAST(6)
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_missed
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_missed 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_cookie
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_cookie 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_tracepoint_cookie
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_tracepoint_cookie 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_perf_event_event_cookie
#define BPFLINK_HAS_struct_bpf_link_info_perf_event_event_cookie 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_raw_tracepoint_cookie
#define BPFLINK_HAS_struct_bpf_link_info_raw_tracepoint_cookie BPFLINK_JSON_LIBBPF_AT_LEAST(6)
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_tracing_cookie
#define BPFLINK_HAS_struct_bpf_link_info_tracing_cookie BPFLINK_JSON_LIBBPF_AT_LEAST(6)
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_struct_ops
#define BPFLINK_HAS_struct_bpf_link_info_struct_ops 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_netfilter
#define BPFLINK_HAS_struct_bpf_link_info_netfilter 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_kprobe_multi
#define BPFLINK_HAS_struct_bpf_link_info_kprobe_multi 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_missed
#define BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_missed 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_cookies
#define BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_cookies 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_uprobe_multi
#define BPFLINK_HAS_struct_bpf_link_info_uprobe_multi 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_tcx
#define BPFLINK_HAS_struct_bpf_link_info_tcx 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_netkit
#define BPFLINK_HAS_struct_bpf_link_info_netkit 1
#endif
#ifndef BPFLINK_HAS_struct_bpf_link_info_sockmap
#define BPFLINK_HAS_struct_bpf_link_info_sockmap BPFLINK_JSON_LIBBPF_AT_LEAST(5)
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_UPROBE
#define BPFLINK_HAS_BPF_PERF_EVENT_UPROBE 1
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_URETPROBE
#define BPFLINK_HAS_BPF_PERF_EVENT_URETPROBE 1
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_KPROBE
#define BPFLINK_HAS_BPF_PERF_EVENT_KPROBE 1
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_KRETPROBE
#define BPFLINK_HAS_BPF_PERF_EVENT_KRETPROBE 1
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_TRACEPOINT
#define BPFLINK_HAS_BPF_PERF_EVENT_TRACEPOINT 1
#endif
#ifndef BPFLINK_HAS_BPF_PERF_EVENT_EVENT
#define BPFLINK_HAS_BPF_PERF_EVENT_EVENT 1
#endif
/* perf_event links formatted here: the member and every event type constant present */
#define BPFLINK_JSON_PERF (BPFLINK_HAS_struct_bpf_link_info_perf_event && BPFLINK_HAS_BPF_PERF_EVENT_UPROBE \
    && BPFLINK_HAS_BPF_PERF_EVENT_URETPROBE && BPFLINK_HAS_BPF_PERF_EVENT_KPROBE \
    && BPFLINK_HAS_BPF_PERF_EVENT_KRETPROBE && BPFLINK_HAS_BPF_PERF_EVENT_TRACEPOINT \
    && BPFLINK_HAS_BPF_PERF_EVENT_EVENT && BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_cookie \
    && BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_missed \
    && BPFLINK_HAS_struct_bpf_link_info_perf_event_kprobe_cookie \
    && BPFLINK_HAS_struct_bpf_link_info_perf_event_tracepoint_cookie \
    && BPFLINK_HAS_struct_bpf_link_info_perf_event_event_cookie)
#define BPFLINK_JSON_KMULTI (BPFLINK_HAS_struct_bpf_link_info_kprobe_multi \
    && BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_missed && BPFLINK_HAS_struct_bpf_link_info_kprobe_multi_cookies)

struct bpflink_json_names {
    const char *const *attach;
    __u32 n_attach;
    const char *const *link;
    __u32 n_link;
    const char *const *perf;
    __u32 n_perf;
    __u32 name_max; /* the longest name in the three tables */
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

#define BPFLINK_NAME_FALLBACK 4096 /* kernels before 6.13 report no perf_event name length (info.py: same) */
#define BPFLINK_JSON_FIXED 1024    /* every key, separator and number of the widest fixed part, with room */
#define BPFLINK_JSON_PER_INT 28    /* "\n      " + 20 digits + "," */
#define BPFLINK_JSON_PER_BYTE 6    /* one input byte escapes to at most \uXXXX */

struct bpflink_jw {
    char *buf;
    size_t cap;
    size_t pos; /* counts on past cap: pos > cap means the text did not fit and must be discarded */
};

static void jw_raw(struct bpflink_jw *w, const char *s, size_t n)
{
    if (n && w->pos <= w->cap && n <= w->cap - w->pos)
        memcpy(w->buf + w->pos, s, n);
    w->pos += n;
}

#define JW_LIT(w, s) jw_raw((w), (s), sizeof(s) - 1)

static void jw_u64(struct bpflink_jw *w, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_raw(w, tmp + i, sizeof(tmp) - i);
}

static void jw_s64(struct bpflink_jw *w, long long v)
{
    if (v < 0) {
        JW_LIT(w, "-");
        jw_u64(w, 0ULL - (unsigned long long)v);
    } else {
        jw_u64(w, (unsigned long long)v);
    }
}

static void jw_u16_escape(struct bpflink_jw *w, unsigned v)
{
    static const char hex[] = "0123456789abcdef";
    char t[6] = {'\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15], hex[v & 15]};
    jw_raw(w, t, sizeof(t));
}

/* One code point of s[0..n) (n >= 1) as Python's UTF-8 decoder with errors="replace" reads it: a maximal
 * prefix of a well-formed sequence that breaks off (or an invalid byte) is one U+FFFD. Returns the bytes used. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    unsigned char b = s[0];
    unsigned c, lo = 0x80, hi = 0xBF;
    size_t need, i;

    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1;
        c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2;
        c = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (b == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3;
        c = b & 0x07;
        if (b == 0xF0)
            lo = 0x90;
        else if (b == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (i = 1; i <= need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *cp = 0xFFFD;
            return i;
        }
        c = (c << 6) | (s[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = c;
    return i;
}

/* s[0..n) (stopping at a NUL, like ffi.string) as Python's json.encoder.encode_basestring_ascii writes
 * s.decode(errors="replace"): quoted, ASCII only. */
static void jw_str(struct bpflink_jw *w, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strnlen(s, n), i = 0;

    JW_LIT(w, "\"");
    while (i < len) {
        size_t run = i;
        while (run < len && p[run] >= 0x20 && p[run] <= 0x7E && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            jw_raw(w, s + i, run - i);
            i = run;
            continue;
        }
        unsigned cp;
        i += utf8_next(p + i, len - i, &cp);
        switch (cp) {
        case '"': JW_LIT(w, "\\\""); break;
        case '\\': JW_LIT(w, "\\\\"); break;
        case '\b': JW_LIT(w, "\\b"); break;
        case '\f': JW_LIT(w, "\\f"); break;
        case '\n': JW_LIT(w, "\\n"); break;
        case '\r': JW_LIT(w, "\\r"); break;
        case '\t': JW_LIT(w, "\\t"); break;
        default:
            if (cp >= 0x10000) {
                cp -= 0x10000;
                jw_u16_escape(w, 0xD800 | (cp >> 10));
                jw_u16_escape(w, 0xDC00 | (cp & 0x3FF));
            } else {
                jw_u16_escape(w, cp);
            }
        }
    }
    JW_LIT(w, "\"");
}

/* for tests (tests/test_cli.py fuzzes it against Python's decode + encode_basestring_ascii): the JSON string
 * of s[0..n) into out[0..cap); returns the length the whole text needs (written only when it is <= cap) */
size_t bpflink_json_string(const char *s, size_t n, char *out, size_t cap)
{
    struct bpflink_jw w = {out, cap, 0};
    jw_str(&w, s, n);
    return w.pos;
}

/* `bpflink show ID --json`'s arrays (bpflink._rawinfo.U64s): a[0..n) as the Python writer prints a list of ints
 * whose items sit at `inner` (inner_len bytes) and whose closing bracket at `indent`; into out[0..cap), returns
 * the length the whole text needs (written only when it is <= cap) */
size_t bpflink_json_u64s(const __u64 *a, size_t n, const char *inner, size_t inner_len, const char *indent,
                         size_t indent_len, char *out, size_t cap)
{
    struct bpflink_jw w = {out, cap, 0};
    if (!n) {
        JW_LIT(&w, "[]");
        return w.pos;
    }
    JW_LIT(&w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            JW_LIT(&w, ",");
        JW_LIT(&w, "\n");
        jw_raw(&w, inner, inner_len);
        jw_u64(&w, a[i]);
    }
    JW_LIT(&w, "\n");
    jw_raw(&w, indent, indent_len);
    JW_LIT(&w, "]");
    return w.pos;
}

static const char *name_of(const char *const *table, __u32 n, __u32 v)
{
    return table && v < n ? table[v] : NULL;
}

static void jw_key(struct bpflink_jw *w, const char *key)
{
    JW_LIT(w, ",\n    \"");
    jw_raw(w, key, strlen(key));
    JW_LIT(w, "\": ");
}

static void jw_key_u64(struct bpflink_jw *w, const char *key, unsigned long long v)
{
    jw_key(w, key);
    jw_u64(w, v);
}

static void jw_key_null(struct bpflink_jw *w, const char *key)
{
    jw_key(w, key);
    JW_LIT(w, "null");
}

static void jw_key_attach(struct bpflink_jw *w, const struct bpflink_json_names *names, __u32 v)
{
    const char *name = name_of(names->attach, names->n_attach, v);
    jw_key(w, "attach_type");
    if (name && *name) {
        jw_str(w, name, strlen(name));
    } else {
        JW_LIT(w, "\"unknown_");
        jw_u64(w, v);
        JW_LIT(w, "\"");
    }
}

static void jw_key_ints(struct bpflink_jw *w, const char *key, const __u64 *a, size_t n)
{
    jw_key(w, key);
    if (!n) {
        JW_LIT(w, "[]");
        return;
    }
    JW_LIT(w, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            JW_LIT(w, ",");
        JW_LIT(w, "\n      ");
        jw_u64(w, a[i]);
    }
    JW_LIT(w, "\n    ]");
}

static size_t name_buf_size(__u32 len)
{
    return len ? len : BPFLINK_NAME_FALLBACK; /* _rawinfo._buf: max(len, 1) if len else the fallback */
}

#if BPFLINK_JSON_PERF
/* perf event kinds whose name takes a second call, and which member holds it */
enum { PE_NONE, PE_UPROBE, PE_KPROBE, PE_TP };

static int perf_kind(__u32 t)
{
    switch (t) {
    case BPF_PERF_EVENT_UPROBE:
    case BPF_PERF_EVENT_URETPROBE: return PE_UPROBE;
    case BPF_PERF_EVENT_KPROBE:
    case BPF_PERF_EVENT_KRETPROBE: return PE_KPROBE;
    case BPF_PERF_EVENT_TRACEPOINT: return PE_TP;
    default: return PE_NONE;
    }
}
#endif

/* The worst-case text of one link (its lead included) from its first info, or 0 for a link this file does not
 * format (the caller's Python path does). */
static size_t link_bound(const struct bpf_link_info *info, const struct bpflink_json_names *names)
{
    /* room for the type, attach type and perf event type names, each escaped */
    size_t fixed = BPFLINK_JSON_FIXED + 3 * BPFLINK_JSON_PER_BYTE * (size_t)names->name_max;

    if (!name_of(names->link, names->n_link, info->type))
        return 0;
    switch (info->type) {
    case BPF_LINK_TYPE_CGROUP:
    case BPF_LINK_TYPE_NETNS:
    case BPF_LINK_TYPE_XDP:
    case BPF_LINK_TYPE_TRACING:
#if BPFLINK_HAS_struct_bpf_link_info_struct_ops
    case BPF_LINK_TYPE_STRUCT_OPS:
#endif
#if BPFLINK_HAS_struct_bpf_link_info_netfilter
    case BPF_LINK_TYPE_NETFILTER:
#endif
#if BPFLINK_HAS_struct_bpf_link_info_tcx
    case BPF_LINK_TYPE_TCX:
#endif
#if BPFLINK_HAS_struct_bpf_link_info_netkit
    case BPF_LINK_TYPE_NETKIT:
#endif
#if BPFLINK_HAS_struct_bpf_link_info_sockmap
    case BPF_LINK_TYPE_SOCKMAP:
#endif
        return fixed;
    case BPF_LINK_TYPE_RAW_TRACEPOINT:
        return fixed + BPFLINK_JSON_PER_BYTE * name_buf_size(info->raw_tracepoint.tp_name_len);
    case BPF_LINK_TYPE_ITER:
        return fixed + BPFLINK_JSON_PER_BYTE * name_buf_size(info->iter.target_name_len);
#if BPFLINK_JSON_KMULTI
    case BPF_LINK_TYPE_KPROBE_MULTI:
        return fixed + 2 * BPFLINK_JSON_PER_INT * (size_t)info->kprobe_multi.count;
#endif
#if BPFLINK_HAS_struct_bpf_link_info_uprobe_multi
    case BPF_LINK_TYPE_UPROBE_MULTI:
        return fixed + BPFLINK_JSON_PER_BYTE * name_buf_size(info->uprobe_multi.path_size)
               + 3 * BPFLINK_JSON_PER_INT * (size_t)info->uprobe_multi.count;
#endif
#if BPFLINK_JSON_PERF
    case BPF_LINK_TYPE_PERF_EVENT: {
        const char *pname = name_of(names->perf, names->n_perf, info->perf_event.type);
        __u32 len = 0;
        switch (pname ? perf_kind(info->perf_event.type) : PE_NONE) {
        case PE_UPROBE: len = info->perf_event.uprobe.name_len; break;
        case PE_KPROBE: len = info->perf_event.kprobe.name_len; break;
        case PE_TP: len = info->perf_event.tracepoint.name_len; break;
        default: return fixed;
        }
        return fixed + BPFLINK_JSON_PER_BYTE * name_buf_size(len);
    }
#endif
    default:
        return 0;
    }
}

/* a second info call into `full` (zeroed, type set, buffers attached by the caller): 0, or -1 when it failed
 * otherwise than ENOSPC (the info grew in between: what fit was filled; info.py takes it the same way) */
static int second_call(int fd, struct bpf_link_info *full)
{
    __u32 len = sizeof(*full);
    int err = bpf_link_get_info_by_fd(fd, full, &len);
    return err && err != -ENOSPC ? -1 : 0;
}

static int iter_target_is(const char *s, size_t n, const char *const *names)
{
    size_t len = strnlen(s, n);
    for (; *names; names++)
        if (strlen(*names) == len && !memcmp(s, *names, len))
            return 1;
    return 0;
}

/* The per-type members of one link, after id/type/prog_id. Returns 0, or -1 when a second call or an
 * allocation failed: the caller discards the text and hands the link to the Python path, which reports it. */
static int format_details(struct bpflink_jw *w, int fd, const struct bpf_link_info *i,
                          const struct bpflink_json_names *names)
{
    struct bpf_link_info full;
    int ret = 0;

    switch (i->type) {
    case BPF_LINK_TYPE_CGROUP:
        jw_key_u64(w, "cgroup_id", i->cgroup.cgroup_id);
        jw_key_attach(w, names, i->cgroup.attach_type);
        return 0;
#if BPFLINK_HAS_struct_bpf_link_info_tcx
    case BPF_LINK_TYPE_TCX:
        jw_key_u64(w, "ifindex", i->tcx.ifindex);
        jw_key_attach(w, names, i->tcx.attach_type);
        return 0;
#endif
#if BPFLINK_HAS_struct_bpf_link_info_netkit
    case BPF_LINK_TYPE_NETKIT:
        jw_key_u64(w, "ifindex", i->netkit.ifindex);
        jw_key_attach(w, names, i->netkit.attach_type);
        return 0;
#endif
    case BPF_LINK_TYPE_NETNS:
        jw_key_u64(w, "netns_ino", i->netns.netns_ino);
        jw_key_attach(w, names, i->netns.attach_type);
        return 0;
    case BPF_LINK_TYPE_XDP:
        jw_key_u64(w, "ifindex", i->xdp.ifindex);
        return 0;
#if BPFLINK_HAS_struct_bpf_link_info_struct_ops
    case BPF_LINK_TYPE_STRUCT_OPS:
        jw_key_u64(w, "map_id", i->struct_ops.map_id);
        return 0;
#endif
#if BPFLINK_HAS_struct_bpf_link_info_netfilter
    case BPF_LINK_TYPE_NETFILTER:
        jw_key_u64(w, "pf", i->netfilter.pf);
        jw_key_u64(w, "hooknum", i->netfilter.hooknum);
        jw_key(w, "priority");
        jw_s64(w, i->netfilter.priority);
        jw_key_u64(w, "flags", i->netfilter.flags);
        return 0;
#endif
#if BPFLINK_HAS_struct_bpf_link_info_sockmap
    case BPF_LINK_TYPE_SOCKMAP:
        jw_key_u64(w, "map_id", i->sockmap.map_id);
        jw_key_attach(w, names, i->sockmap.attach_type);
        return 0;
#endif
    case BPF_LINK_TYPE_TRACING:
        jw_key_attach(w, names, i->tracing.attach_type);
        jw_key_u64(w, "target_obj_id", i->tracing.target_obj_id);
        jw_key_u64(w, "target_btf_id", i->tracing.target_btf_id);
#if BPFLINK_HAS_struct_bpf_link_info_tracing_cookie
        jw_key_u64(w, "cookie", i->tracing.cookie);
#else
        jw_key_u64(w, "cookie", 0);
#endif
        return 0;
    default:
        break;
    }

    memset(&full, 0, sizeof(full));
    full.type = i->type;
    switch (i->type) {
    case BPF_LINK_TYPE_RAW_TRACEPOINT: {
        size_t size = name_buf_size(i->raw_tracepoint.tp_name_len);
        char *buf = calloc(size, 1);
        if (!buf)
            return -1;
        full.raw_tracepoint.tp_name = (__u64)(unsigned long)buf;
        full.raw_tracepoint.tp_name_len = (__u32)size;
        ret = second_call(fd, &full);
        if (!ret) {
            jw_key(w, "tp_name");
            jw_str(w, buf, size);
#if BPFLINK_HAS_struct_bpf_link_info_raw_tracepoint_cookie
            jw_key_u64(w, "cookie", full.raw_tracepoint.cookie);
#else
            jw_key_u64(w, "cookie", 0);
#endif
        }
        free(buf);
        return ret;
    }
    case BPF_LINK_TYPE_ITER: {
        static const char *const map_targets[] = {"bpf_map_elem", "bpf_sk_storage_map", "sockmap", NULL};
        static const char *const cgroup_targets[] = {"cgroup", NULL};
        static const char *const task_targets[] = {"task", "task_file", "task_vma", NULL};
        size_t size = name_buf_size(i->iter.target_name_len);
        char *buf = calloc(size, 1);
        if (!buf)
            return -1;
        full.iter.target_name = (__u64)(unsigned long)buf;
        full.iter.target_name_len = (__u32)size;
        ret = second_call(fd, &full);
        if (!ret) {
            int is_map = iter_target_is(buf, size, map_targets), is_cg = iter_target_is(buf, size, cgroup_targets);
            int is_task = iter_target_is(buf, size, task_targets);
            jw_key(w, "target_name");
            jw_str(w, buf, size);
            if (is_map)
                jw_key_u64(w, "map_id", full.iter.map.map_id);
            else
                jw_key_null(w, "map_id");
            if (is_cg) {
                jw_key_u64(w, "cgroup_id", full.iter.cgroup.cgroup_id);
                jw_key_u64(w, "order", full.iter.cgroup.order);
            } else {
                jw_key_null(w, "cgroup_id");
                jw_key_null(w, "order");
            }
            if (is_task) {
                jw_key_u64(w, "tid", full.iter.task.tid);
                jw_key_u64(w, "pid", full.iter.task.pid);
            } else {
                jw_key_null(w, "tid");
                jw_key_null(w, "pid");
            }
        }
        free(buf);
        return ret;
    }
#if BPFLINK_JSON_KMULTI
    case BPF_LINK_TYPE_KPROBE_MULTI: {
        size_t count = i->kprobe_multi.count, n = 0;
        __u64 *addrs = NULL, *cookies = NULL;
        const struct bpf_link_info *km = i;
        if (count) {
            addrs = calloc(count, sizeof(__u64));
            cookies = calloc(count, sizeof(__u64));
            if (!addrs || !cookies) {
                ret = -1;
                goto kprobe_out;
            }
            full.kprobe_multi.addrs = (__u64)(unsigned long)addrs;
            full.kprobe_multi.cookies = (__u64)(unsigned long)cookies;
            full.kprobe_multi.count = (__u32)count;
            ret = second_call(fd, &full);
            if (ret)
                goto kprobe_out;
            km = &full;
            n = count < km->kprobe_multi.count ? count : km->kprobe_multi.count;
        }
        jw_key_ints(w, "addrs", addrs, n);
        jw_key_ints(w, "cookies", cookies, n);
        jw_key_u64(w, "count", km->kprobe_multi.count);
        jw_key_u64(w, "flags", km->kprobe_multi.flags);
        jw_key_u64(w, "missed", km->kprobe_multi.missed);
kprobe_out:
        free(addrs);
        free(cookies);
        return ret;
    }
#endif
#if BPFLINK_HAS_struct_bpf_link_info_uprobe_multi
    case BPF_LINK_TYPE_UPROBE_MULTI: {
        size_t count = i->uprobe_multi.count, size = name_buf_size(i->uprobe_multi.path_size), n = 0;
        __u64 *offs = NULL, *refs = NULL, *cookies = NULL;
        char *path = calloc(size, 1);
        if (!path) {
            ret = -1;
            goto uprobe_out;
        }
        full.uprobe_multi.path = (__u64)(unsigned long)path;
        full.uprobe_multi.path_size = (__u32)size;
        if (count) {
            offs = calloc(count, sizeof(__u64));
            refs = calloc(count, sizeof(__u64));
            cookies = calloc(count, sizeof(__u64));
            if (!offs || !refs || !cookies) {
                ret = -1;
                goto uprobe_out;
            }
            full.uprobe_multi.offsets = (__u64)(unsigned long)offs;
            full.uprobe_multi.ref_ctr_offsets = (__u64)(unsigned long)refs;
            full.uprobe_multi.cookies = (__u64)(unsigned long)cookies;
            full.uprobe_multi.count = (__u32)count;
        }
        ret = second_call(fd, &full);
        if (ret)
            goto uprobe_out;
        n = count < full.uprobe_multi.count ? count : full.uprobe_multi.count;
        jw_key(w, "path");
        jw_str(w, path, size);
        jw_key_ints(w, "offsets", offs, n);
        jw_key_ints(w, "ref_ctr_offsets", refs, n);
        jw_key_ints(w, "cookies", cookies, n);
        jw_key_u64(w, "count", full.uprobe_multi.count);
        jw_key_u64(w, "flags", full.uprobe_multi.flags);
        jw_key_u64(w, "pid", full.uprobe_multi.pid);
uprobe_out:
        free(path);
        free(offs);
        free(refs);
        free(cookies);
        return ret;
    }
#endif
#if BPFLINK_JSON_PERF
    case BPF_LINK_TYPE_PERF_EVENT: {
        __u32 t = i->perf_event.type;
        const char *pname = name_of(names->perf, names->n_perf, t);
        int kind = pname ? perf_kind(t) : PE_NONE;
        const struct bpf_link_info *pe = i;
        char *buf = NULL;
        size_t size = 0;

        jw_key(w, "perf_type");
        if (pname)
            jw_str(w, pname, strlen(pname));
        else
            JW_LIT(w, "\"unspec\"");
        if (t == 0) { /* before 6.6: nothing reported (info.py: None rather than zero) */
            static const char *const keys[] = {"name", "offset", "addr", "missed", "cookie", "ref_ctr_offset",
                                               "config", "event_type"};
            for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                jw_key_null(w, keys[k]);
            return 0;
        }
        if (kind != PE_NONE) {
            __u32 len = kind == PE_UPROBE ? i->perf_event.uprobe.name_len
                        : kind == PE_KPROBE ? i->perf_event.kprobe.name_len : i->perf_event.tracepoint.name_len;
            size = name_buf_size(len);
            buf = calloc(size, 1);
            if (!buf)
                return -1;
            full.perf_event.type = t;
            if (kind == PE_UPROBE) {
                full.perf_event.uprobe.file_name = (__u64)(unsigned long)buf;
                full.perf_event.uprobe.name_len = (__u32)size;
            } else if (kind == PE_KPROBE) {
                full.perf_event.kprobe.func_name = (__u64)(unsigned long)buf;
                full.perf_event.kprobe.name_len = (__u32)size;
            } else {
                full.perf_event.tracepoint.tp_name = (__u64)(unsigned long)buf;
                full.perf_event.tracepoint.name_len = (__u32)size;
            }
            ret = second_call(fd, &full);
            if (ret) {
                free(buf);
                return ret;
            }
            pe = &full;
        }
        unsigned long long offset = 0, addr = 0, missed = 0, cookie = 0, ref_ctr = 0, config = 0, etype = 0;
        if (kind == PE_UPROBE) {
            offset = pe->perf_event.uprobe.offset;
            cookie = pe->perf_event.uprobe.cookie;
#if BPFLINK_HAS_struct_bpf_link_info_perf_event_uprobe_ref_ctr_offset
            ref_ctr = pe->perf_event.uprobe.ref_ctr_offset;
#endif
        } else if (kind == PE_KPROBE) {
            offset = pe->perf_event.kprobe.offset;
            addr = pe->perf_event.kprobe.addr;
            missed = pe->perf_event.kprobe.missed;
            cookie = pe->perf_event.kprobe.cookie;
        } else if (kind == PE_TP) {
            cookie = pe->perf_event.tracepoint.cookie;
        } else if (pname && t == BPF_PERF_EVENT_EVENT) {
            config = pe->perf_event.event.config;
            etype = pe->perf_event.event.type;
            cookie = pe->perf_event.event.cookie;
        }
        jw_key(w, "name");
        if (buf)
            jw_str(w, buf, size);
        else
            JW_LIT(w, "\"\"");
        free(buf);
        jw_key_u64(w, "offset", offset);
        jw_key_u64(w, "addr", addr);
        jw_key_u64(w, "missed", missed);
        jw_key_u64(w, "cookie", cookie);
        jw_key_u64(w, "ref_ctr_offset", ref_ctr);
        jw_key_u64(w, "config", config);
        jw_key_u64(w, "event_type", etype);
        return 0;
    }
#endif
    default:
        return -1;
    }
}

/* One link's list element (its lead first), or -1 (text to discard) for the Python path. */
static int format_link(struct bpflink_jw *w, int fd, const struct bpf_link_info *info,
                       const struct bpflink_json_names *names, int first)
{
    const char *tname = name_of(names->link, names->n_link, info->type);

    if (first)
        JW_LIT(w, "[\n  {\n    \"id\": ");
    else
        JW_LIT(w, ",\n  {\n    \"id\": ");
    jw_u64(w, info->id);
    JW_LIT(w, ",\n    \"type\": ");
    jw_str(w, tname, strlen(tname));
    JW_LIT(w, ",\n    \"prog_id\": ");
    jw_u64(w, info->prog_id);
    if (format_details(w, fd, info, names))
        return -1;
    JW_LIT(w, "\n  }");
    return 0;
}

/* One batch of `bpflink list --json`: from st->next_start, link after link is opened by id, its info read and
 * its list element appended to buf[0..cap) (a "[\n  " lead while st->first, ",\n  " after). Stops at the end
 * of the walk (st->done = 1), when the next link's worst-case text does not fit (st->need = that size when
 * nothing was written yet: the caller retries with a buffer that large), or at a link this file does not
 * format (st->pending_fd = its open fd, st->pending = its first info: the caller formats it, closes the fd
 * and calls again). st->len gets the bytes written, st->next_start where to go on. Ids released or being set
 * up are skipped as in bpflink_link_walk. Returns the number of links written, or -errno when the walk fails
 * before any was. */
int bpflink_link_walk_json(struct bpflink_json_walk *st, const struct bpflink_json_names *names, char *buf,
                           size_t cap)
{
    struct bpflink_jw w = {buf, cap, 0};
    __u32 id = st->next_start, next;
    struct bpf_link_info info;
    int n = 0, ret = 0;

    st->done = 0;
    st->pending_fd = -1;
    st->need = 0;
    st->len = 0;
    for (;;) {
        int err = bpf_link_get_next_id(id, &next);
        if (err) {
            if (err == -ENOENT)
                st->done = 1;
            else
                ret = err;
            break;
        }
        int fd = bpf_link_get_fd_by_id(next);
        if (fd < 0) {
            if (fd == -ENOENT || fd == -EAGAIN) {
                id = next;
                continue;
            }
            ret = fd;
            break;
        }
        __u32 len = sizeof(info);
        memset(&info, 0, sizeof(info));
        err = bpf_link_get_info_by_fd(fd, &info, &len);
        if (err) {
            close(fd);
            if (err == -ENOENT) {
                id = next;
                continue;
            }
            ret = err;
            break;
        }
        size_t bound = link_bound(&info, names), mark = w.pos;
        if (!bound) {
            st->pending = info;
            st->pending_fd = fd;
            id = next;
            break;
        }
        if (bound > cap - w.pos) {
            close(fd);
            if (!n)
                st->need = bound;
            break;
        }
        if (format_link(&w, fd, &info, names, st->first) || w.pos > cap) {
            w.pos = mark;
            st->pending = info;
            st->pending_fd = fd;
            id = next;
            break;
        }
        close(fd);
        st->first = 0;
        n++;
        id = next;
    }
    st->next_start = id;
    st->len = w.pos;
    return n || !ret ? n : ret;
}
