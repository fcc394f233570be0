/* bpflink._fdowner: the C base of bpflink's fd owners (Link, Program, Map, PerfEvent), link_create's
 * no-opts hot path, and the Python-object builders cffi cannot give (pairs: a perf buffer's records; split: a
 * batch's records as bytes).
 * Built by setup.py as its own small extension against the stable ABI (cp39-abi3), with no libbpf of its own:
 * create.py hands it the address of bpflink._ffi's bpflink_link_create_noopts().
 *
 * Why C: creating and finalizing a Python-level owner (its __init__/__del__, attribute stores, os.close)
 * cost ~2,200 user-space instructions per link, more than the syscall itself (bench/, callgrind).
 */
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

typedef struct {
    PyObject_HEAD
    int fd;               /* -1 once closed or detached */
    PyObject *attach_type; /* Link's attach type (NULL for the other owners): a slot, so create sets it in C */
} FdBase;

typedef int (*link_create_fn)(int prog_fd, int target_fd, int attach_type);
static link_create_fn link_create_noopts;

static PyObject *closed_error(PyObject *self)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__name__");
    if (name != NULL) {
        PyErr_Format(PyExc_ValueError, "I/O operation on closed %U", name);
        Py_DECREF(name);
    }
    return NULL;
}

static PyObject *fdbase_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot(type, Py_tp_alloc);
    FdBase *self = (FdBase *)alloc(type, 0);
    if (self != NULL)
        self->fd = -1; /* subclasses' __init__ set _fd */
    return (PyObject *)self;
}

/* close(2) without the GIL: closing a tcx or perf_event link waits for RCU (milliseconds) */
static int close_released(int fd)
{
    int ret;
    Py_BEGIN_ALLOW_THREADS
    ret = close(fd);
    Py_END_ALLOW_THREADS
    return ret;
}

/* close(2) failed: an OSError naming the owner and the fd (EBADF: someone closed it underneath us) */
static PyObject *close_error(PyObject *self, int fd, int err)
{
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__name__");
    if (name == NULL)
        return NULL;
    PyObject *msg = PyUnicode_FromFormat(
        "%U: close(fd %d): %s%s", name, fd, strerror(err),
        err == EBADF ? " [EBADF]; the fd was closed underneath its owner (by os.close or another library)" : "");
    Py_DECREF(name);
    if (msg == NULL)
        return NULL;
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "iO", err, msg);
    Py_DECREF(msg);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *fdbase_close(FdBase *self, PyObject *unused)
{
    int fd = self->fd;
    if (fd >= 0) {
        self->fd = -1; /* before releasing the GIL: a second close() from another thread finds it closed */
        if (close_released(fd) < 0 && errno != EINTR) /* as os.close: EINTR still closed the fd on Linux */
            return close_error((PyObject *)self, fd, errno);
    }
    Py_RETURN_NONE;
}

static PyObject *fdbase_fileno(FdBase *self, PyObject *unused)
{
    if (self->fd < 0)
        return closed_error((PyObject *)self);
    return PyLong_FromLong(self->fd);
}

static PyObject *fdbase_enter(PyObject *self, PyObject *unused)
{
    Py_INCREF(self);
    return self;
}

static PyObject *fdbase_exit(PyObject *self, PyObject *args)
{
    return PyObject_CallMethod(self, "close", NULL); /* the subclass's close(): Program closes its maps too */
}

static PyObject *fdbase_get_fd(FdBase *self, void *closure)
{
    return fdbase_fileno(self, NULL);
}

/* _fd's setter: the constructors of every owner store their fd here, so the range check is in one place. A
 * T_INT member would truncate 2**32 + fd to fd (with only a RuntimeWarning) and later close an unrelated file. */
static int fdbase_set_fd(FdBase *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_fd cannot be deleted");
        return -1;
    }
    if (!PyLong_Check(value) || PyBool_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "fd must be an int");
        return -1;
    }
    int overflow = 0;
    long v = PyLong_AsLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (overflow || v < 0 || v > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "fd must be in 0..2**31-1, got %S", value);
        return -1;
    }
    self->fd = (int)v;
    return 0;
}

static PyObject *fdbase_get_raw_fd(FdBase *self, void *closure)
{
    return PyLong_FromLong(self->fd);
}

/* give up ownership: the fd for the caller to close; the owner is closed from then on */
static PyObject *fdbase_detach_fd(FdBase *self, PyObject *unused)
{
    int fd = self->fd;
    if (fd < 0)
        return closed_error((PyObject *)self);
    self->fd = -1;
    return PyLong_FromLong(fd);
}

static PyObject *fdbase_get_closed(FdBase *self, void *closure)
{
    return PyBool_FromLong(self->fd < 0);
}

/* garbage collection of an open owner: close it and say so (ResourceWarning), as files do */
static void fdbase_finalize(FdBase *self)
{
    int fd = self->fd;
    if (fd < 0)
        return;
    self->fd = -1;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *name = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "__name__");
    if (name == NULL || PyErr_WarnFormat(PyExc_ResourceWarning, 1, "unclosed %U (fd %d)", name, fd) < 0)
        PyErr_Clear(); /* warnings as errors, or interpreter shutdown: the fd is closed all the same */
    Py_XDECREF(name);
    close_released(fd);
    PyErr_Restore(type, value, tb);
}

static int fdbase_traverse(FdBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->attach_type); /* an enum member: never part of a cycle, but visit what we own */
    return 0;
}

static int fdbase_clear(FdBase *self)
{
    Py_CLEAR(self->attach_type);
    return 0;
}

static void fdbase_dealloc(FdBase *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self); /* Python subclasses' dealloc re-tracks before calling this one */
    if (self->fd >= 0)
        fdbase_finalize(self); /* instances of this base itself; Python subclasses finalized already */
    Py_CLEAR(self->attach_type);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(self);
    Py_DECREF(tp); /* instances of heap types own a reference to their type */
}

static PyMethodDef fdbase_methods[] = {
    {"close", (PyCFunction)fdbase_close, METH_NOARGS, "Close the fd (idempotent)."},
    {"fileno", (PyCFunction)fdbase_fileno, METH_NOARGS, "The fd; ValueError once closed."},
    {"detach_fd", (PyCFunction)fdbase_detach_fd, METH_NOARGS,
     "Give up ownership: return the fd, which the caller must close (ValueError once closed)."},
    {"__enter__", (PyCFunction)fdbase_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)fdbase_exit, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef fdbase_members[] = {
    {"_attach_type", T_OBJECT, offsetof(FdBase, attach_type), 0, "Link.attach_type's storage"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef fdbase_getset[] = {
    {"fd", (getter)fdbase_get_fd, NULL, "The file descriptor; ValueError once closed.", NULL},
    {"closed", (getter)fdbase_get_closed, NULL, "True once closed (or detached).", NULL},
    {"_fd", (getter)fdbase_get_raw_fd, (setter)fdbase_set_fd, "the fd, -1 once closed; set: 0..2**31-1", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot fdbase_slots[] = {
    {Py_tp_new, fdbase_new},
    {Py_tp_dealloc, fdbase_dealloc},
    {Py_tp_finalize, fdbase_finalize},
    {Py_tp_traverse, fdbase_traverse},
    {Py_tp_clear, fdbase_clear},
    {Py_tp_methods, fdbase_methods},
    {Py_tp_members, fdbase_members},
    {Py_tp_getset, fdbase_getset},
    {Py_tp_doc, "Owns one fd: the C part of bpflink._fd.FdOwner."},
    {0, NULL},
};

static PyType_Spec fdbase_spec = {
    "bpflink._fdowner.FdBase", sizeof(FdBase), 0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC, fdbase_slots,
};

static PyTypeObject *fdbase_type;

/* set by create.py once: the C shim, the classes it recognises and AttachType's value -> member table */
static PyTypeObject *link_type, *program_type;
static PyObject *attach_types;

/* an fd from a Program (its slot, not an attribute lookup) or an exact int in 0..INT_MAX; -1 otherwise */
static int fast_fd(PyObject *obj, int allow_program)
{
    if (allow_program && Py_TYPE(obj) == program_type)
        return ((FdBase *)obj)->fd;
    if (!PyLong_CheckExact(obj))
        return -1;
    long v = PyLong_AsLong(obj);
    if (v < 0 || v > INT_MAX) {
        PyErr_Clear(); /* overflow: the Python path reports it */
        return -1;
    }
    return (int)v;
}

/* link_create_fast(prog, target, attach_type): link_create without opts for the common arguments, checked
 * as create.py checks them (Program or int fd, int or None target, AttachType member or int value).
 * Returns the Link, the negative errno as an int, or None when the arguments need the Python path. */
static PyObject *link_create_fast(PyObject *module, PyObject *args)
{
    if (link_create_noopts == NULL || PyTuple_Size(args) != 3)
        Py_RETURN_NONE;
    PyObject *prog = PyTuple_GetItem(args, 0), *target = PyTuple_GetItem(args, 1);
    PyObject *at = PyTuple_GetItem(args, 2);
    int prog_fd = fast_fd(prog, 1);
    int target_fd = target == Py_None ? 0 : fast_fd(target, 0);
    if (prog_fd < 0 || target_fd < 0)
        Py_RETURN_NONE;
    /* an enum member is an int: its value without a Python-level __hash__ or _value_ lookup */
    if (!PyLong_Check(at))
        Py_RETURN_NONE; /* names and the wrong types: the Python path */
    long value = PyLong_AsLong(at);
    if (value == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    PyObject *key = PyLong_FromLong(value);
    if (key == NULL)
        return NULL;
    PyObject *member = PyDict_GetItemWithError(attach_types, key); /* borrowed */
    Py_DECREF(key);
    if (member == NULL) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE; /* unknown or unavailable: the Python path raises the right error */
    }
    if (!PyLong_CheckExact(at) && Py_TYPE(at) != Py_TYPE(member))
        Py_RETURN_NONE; /* another int subclass (bool, another enum): the Python path decides */
    int ret;
    Py_BEGIN_ALLOW_THREADS
    ret = link_create_noopts(prog_fd, target_fd, (int)value);
    Py_END_ALLOW_THREADS
    if (ret < 0)
        return PyLong_FromLong(ret);
    FdBase *self = (FdBase *)fdbase_new(link_type, NULL, NULL);
    if (self == NULL) {
        close(ret);
        return NULL;
    }
    self->fd = ret;
    Py_INCREF(member);
    self->attach_type = member;
    return (PyObject *)self;
}

/* set_link_create(address of bpflink_link_create_noopts, Link, Program, {value: AttachType member}) */
static PyObject *set_link_create(PyObject *module, PyObject *args)
{
    PyObject *address, *link, *program, *table;
    if (!PyArg_ParseTuple(args, "OO!O!O!", &address, &PyType_Type, &link, &PyType_Type, &program,
                          &PyDict_Type, &table))
        return NULL;
    if (!PyType_IsSubtype((PyTypeObject *)link, fdbase_type) || !PyType_IsSubtype((PyTypeObject *)program, fdbase_type)) {
        PyErr_SetString(PyExc_TypeError, "set_link_create: Link and Program must derive from FdBase");
        return NULL;
    }
    void *fn = PyLong_AsVoidPtr(address);
    if (fn == NULL)
        return PyErr_Occurred() ? NULL : (PyErr_SetString(PyExc_ValueError, "NULL function"), NULL);
    PyObject *old[3] = {(PyObject *)link_type, (PyObject *)program_type, attach_types};
    Py_INCREF(link);
    Py_INCREF(program);
    Py_INCREF(table);
    link_type = (PyTypeObject *)link; /* kept for the life of the process (a reload of create.py replaces them) */
    program_type = (PyTypeObject *)program;
    attach_types = table;
    for (int i = 0; i < 3; i++)
        Py_XDECREF(old[i]);
    link_create_noopts = (link_create_fn)fn;
    Py_RETURN_NONE;
}

/* 1 when instances of cls have no __dict__ (so a tuple of them can refer to nothing but its items), 0 when they
 * do, -1 on error */
static int without_dict(PyTypeObject *cls)
{
    PyObject *off = PyObject_GetAttrString((PyObject *)cls, "__dictoffset__");
    long v;

    if (off == NULL)
        return -1;
    v = PyLong_AsLong(off);
    Py_DECREF(off);
    if (v == -1 && PyErr_Occurred())
        return -1;
    return v == 0;
}

/* pairs(cls, firsts, seconds) -> [cls(firsts[0], seconds[0]), ...] for a 2-field tuple subclass (PerfRecord):
 * the per-record objects a perf buffer hands over, made in one C loop. From Python, tuple.__new__(cls, pair)
 * costs ~200 ns a record, more than the rest of the hand-over (bench/README.md, perf buffers).
 *
 * A pair of objects the garbage collector does not track (ints, bytes) in a tuple subclass without a __dict__
 * can never be part of a reference cycle, so it is untracked as CPython untracks such plain tuples. Tracked,
 * every few hundred records would make the collector walk all the young records (~190 ns a record instead of
 * ~60 with the collector on). */
static PyObject *pairs(PyObject *module, PyObject *args)
{
    PyTypeObject *cls;
    PyObject *firsts, *seconds, *out;
    allocfunc alloc;
    Py_ssize_t n, i;
    int plain;

    (void)module;
    if (!PyArg_ParseTuple(args, "O!O!O!:pairs", &PyType_Type, &cls, &PyList_Type, &firsts, &PyList_Type,
                          &seconds))
        return NULL;
    if (!PyType_IsSubtype(cls, &PyTuple_Type) || !(PyType_GetFlags(cls) & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "pairs: cls must be a tuple subclass defined in Python");
        return NULL;
    }
    n = PyList_Size(firsts);
    if (PyList_Size(seconds) != n) {
        PyErr_SetString(PyExc_ValueError, "pairs: the two lists differ in length");
        return NULL;
    }
    alloc = (allocfunc)PyType_GetSlot(cls, Py_tp_alloc);
    if (alloc == NULL)
        return PyErr_Occurred() ? NULL : PyErr_Format(PyExc_TypeError, "pairs: %R has no allocator", cls);
    plain = without_dict(cls);
    if (plain < 0)
        return NULL;
    out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (i = 0; i < n; i++) {
        /* read again each time: an allocation may run the GC, and a finalizer could change the lists */
        PyObject *a = PyList_GetItem(firsts, i), *b = PyList_GetItem(seconds, i), *t;

        if (a == NULL || b == NULL)
            goto fail;
        Py_INCREF(a);
        Py_INCREF(b);
        t = alloc(cls, 2);
        if (t == NULL) {
            Py_DECREF(a);
            Py_DECREF(b);
            goto fail;
        }
        PyTuple_SetItem(t, 0, a);  /* steal a and b; cannot fail on a new 2-tuple */
        PyTuple_SetItem(t, 1, b);
        if (plain && !PyObject_GC_IsTracked(a) && !PyObject_GC_IsTracked(b))
            PyObject_GC_UnTrack(t);
        PyList_SetItem(out, i, t);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* split(data, step, n) -> [data[0:n], data[step:step + n], ...]: fixed-size records out of a batch (bytes whose
 * length is a multiple of step), one C loop instead of a Python slice a record */
static PyObject *split(PyObject *module, PyObject *args)
{
    PyObject *data, *out;
    Py_ssize_t step, n, size, count, i;
    char *base;

    (void)module;
    if (!PyArg_ParseTuple(args, "O!nn:split", &PyBytes_Type, &data, &step, &n))
        return NULL;
    if (PyBytes_AsStringAndSize(data, &base, &size) < 0)
        return NULL;
    if (step <= 0 || n < 0 || n > step || size % step) {
        PyErr_Format(PyExc_ValueError, "split: %zd bytes do not hold records of %zd bytes every %zd", size, n,
                     step);
        return NULL;
    }
    count = size / step;
    out = PyList_New(count);
    if (out == NULL)
        return NULL;
    for (i = 0; i < count; i++) {
        PyObject *rec = PyBytes_FromStringAndSize(base + i * step, n);

        if (rec == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SetItem(out, i, rec);  /* steals rec; cannot fail on a new list */
    }
    return out;
}

static PyMethodDef module_methods[] = {
    {"link_create_fast", link_create_fast, METH_VARARGS, "link_create_fast(prog, target, attach_type)"},
    {"pairs", pairs, METH_VARARGS, "pairs(cls, firsts, seconds): [cls(a, b) for a, b in zip(...)], in C"},
    {"split", split, METH_VARARGS, "split(data, step, n): [data[o:o + n] for o in range(0, len(data), step)]"},
    {"set_link_create", set_link_create, METH_VARARGS, "set_link_create(address, Link, Program, table)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "bpflink._fdowner", "The C base of bpflink's fd owners.", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fdowner(void)
{
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    fdbase_type = (PyTypeObject *)PyType_FromSpec(&fdbase_spec);
    if (fdbase_type == NULL || PyModule_AddObject(m, "FdBase", (PyObject *)fdbase_type) < 0) {
        Py_XDECREF(fdbase_type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(fdbase_type); /* PyModule_AddObject stole one reference; link_create keeps this one */
    return m;
}
