"""``Object``: a compiled BPF ELF object (``clang -target bpf``) opened, configured and loaded through libbpf.

``Object.open(path)`` opens and loads at once. ``Object.open(path, load=False)`` stops after open so that the
object can be configured first -- global variables by name (typed from the object's BTF), map sizes and pins,
which programs load -- and ``obj.load()`` then loads it:

>>> # not run as a doctest: needs a compiled counter.bpf.o (the tutorial, docs/tutorial.md, runs one)
>>> obj = Object.open("counter.bpf.o", load=False)  # doctest: +SKIP
>>> obj.globals["target_pid"] = 1234  # doctest: +SKIP
>>> obj.configure_map("events", max_entries=1 << 16)  # doctest: +SKIP
>>> obj.load()  # doctest: +SKIP
>>> obj.globals["hits"]  # doctest: +SKIP
0
>>> counts = obj.map("counts")  # doctest: +SKIP

``target_pid`` is a ``const volatile int`` (``.rodata``): set before load; ``hits`` a ``.bss`` counter read live
from the map's memory after load; ``counts`` a ``Map`` whose keys and values decode by the object's BTF.

Programs and maps taken from an object (``obj.program``, ``obj.map``) are dup'ed fds that outlive it. Prefer one
``Object`` per file: ``Program.from_object(path, name)`` opens and loads the file each time it is called, so two
calls on one file make two separate copies of every map of that file (programs that should share a map must come
from the same ``Object``).

Threads: every method may be called from any thread; ``close()`` is idempotent, waits for methods running on the
object, and any method after it raises ``ValueError("I/O operation on closed Object")``.
"""

from __future__ import annotations

import errno
import os
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from . import lowlevel as ll
from ._fd import FdLike, as_fd
from ._limits import U32_MAX, integer
from .btf import CType, Reader
from .enums import AttachType, ProgType
from .errors import NotSupportedError, VerifierError, check, errno_name, error, strerror
from .map import Map
from .program import Program

_LOG_SIZE = 1 << 20  # per program, only while loading: the verifier log of a refused program lands here
_GLOBAL_SECTIONS = (".rodata", ".data", ".bss")


def _str(ptr: Any) -> str:
    return "" if ptr == ll.NULL else ll.ffi.string(ptr).decode(errors="replace")


def libbpf_error(err: int, what: str, *, hint: str | None = None) -> OSError:
    """``error()`` that also knows libbpf's own codes (4000 and up: "not an ELF file", "not a BPF object")."""
    if err >= 4000:
        text = strerror(err)  # libbpf's text for its own codes, from the one place that knows them
        message = f"{what}: {text} [LIBBPF_ERRNO {err}]" + (f"; {hint}" if hint else "")
        # errno EINVAL for the exception type: libbpf's codes are not errnos, and OSError(4001) would say so
        exc = OSError(errno.EINVAL, message)
        exc.libbpf_errno = err  # type: ignore[attr-defined]
        return exc
    return error(err, what, hint=hint)


class _LibbpfCapture:
    """libbpf's messages of this thread while loading (they name a program refused before verification)."""

    def __enter__(self) -> _LibbpfCapture:
        import logging

        self.lines: list[str] = []
        ident = threading.get_ident()
        lines = self.lines

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.thread == ident:
                    lines.append(record.getMessage())

        self.handler = Handler(logging.WARNING)
        logging.getLogger("bpflink.libbpf").addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        import logging

        logging.getLogger("bpflink.libbpf").removeHandler(self.handler)

    def failed_program(self) -> str | None:
        import re

        for line in self.lines:
            m = re.search(r"prog '([^']+)': (?:failed to load|BPF program load failed)", line)
            if m:
                return m.group(1)
        return None


class LoadRefusedError(NotSupportedError, PermissionError):
    """The kernel refused a load to a caller holding the capabilities it needs (lockdown, LSM policy).

    Both a ``NotSupportedError`` (with ``reason``) and a ``PermissionError`` (errno ``EPERM``).
    """

    def __init__(self, feature: str, reason: str) -> None:
        super().__init__(feature, reason)
        self.errno = errno.EPERM


_live: weakref.WeakSet[Object] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # a lock held by another thread of the parent at fork() would be held forever in the child
    for obj in list(_live):
        obj._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Object:
    """A ``bpf_object``: opened (``loaded`` False) or loaded. Not copyable: it owns libbpf's handle."""

    def __init__(self, handle: Any, path: str) -> None:
        self._lock = threading.RLock()
        self._obj = handle
        self.path = path
        self._loaded = False
        self._reader: Reader | None = None
        self._vars: dict[str, tuple[str, int, Any, str, CType]] | None = None
        self._spec_cache: list[Any] | None = None  # attach specs of the loaded programs (bpflink.attach)
        _live.add(self)

    # --- lifecycle -------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | bytes | os.PathLike[str] | os.PathLike[bytes], *, load: bool = True,
             programs: Iterable[str] | None = None,
             attach_targets: Mapping[str, tuple[FdLike, str]] | None = None) -> Object:
        """Open ``path`` and, unless ``load=False``, load it; with ``programs``, load only those.

        ``attach_targets``: ``{program: (target_program, function)}`` for freplace (EXT) programs, which are
        verified against a global function of an already loaded program (``bpf_program__set_attach_target``).
        """
        raw = os.fsencode(path)
        if b"\0" in raw:
            raise ValueError(f"path must not contain NUL bytes: {raw!r}")
        spath = os.fsdecode(raw)
        if not os.path.isfile(spath):
            raise FileNotFoundError(errno.ENOENT, f"no BPF object at {spath}")
        handle = ll.bpf_object__open_file(raw, ll.NULL)
        err = ll.libbpf_get_error(handle)
        if err:
            raise libbpf_error(-err, f"bpf_object__open_file({spath})",
                               hint="is it a BPF ELF object (clang -target bpf -g -c)?")
        obj = cls(handle, spath)
        try:
            if programs is not None:
                wanted = set(programs)
                found = set(obj.program_names)
                missing = wanted - found
                if missing:
                    raise KeyError(f"{spath} has no program {sorted(missing)}; it has {sorted(found)}")
                for name in found:
                    obj.configure_program(name, autoload=name in wanted)
            for name, (target, func) in (attach_targets or {}).items():
                obj.configure_program(name, attach_target=(target, func))
            if load:
                obj.load()
        except BaseException:
            obj.close()
            raise
        return obj

    def _handle(self) -> Any:
        """The bpf_object pointer; the caller holds ``self._lock`` for as long as it uses it."""
        if self._obj is None:
            raise ValueError("I/O operation on closed Object")
        return self._obj

    @property
    def loaded(self) -> bool:
        return self._loaded

    @property
    def closed(self) -> bool:
        return self._obj is None

    def _before_load(self, what: str) -> Any:
        handle = self._handle()
        if self._loaded:
            raise ValueError(f"{what}: {self.path} is already loaded; configure it between open(load=False) and "
                             "load()")
        return handle

    def load(self) -> None:
        """Load every program (with autoload on) and create the maps.

        A refused program raises ``VerifierError`` with its verifier log and its name; a kernel lockdown or a
        missing feature ``NotSupportedError``; anything else the ``OSError`` for libbpf's code.
        """
        with self._lock:
            handle = self._before_load("load")
            logs: dict[str, Any] = {}
            loading = [(name, prog) for name, prog in self._iter_programs() if ll.bpf_program__autoload(prog)]
            # the kernel keeps a log's tail when it overflows (6.4+): a big object gets smaller buffers each
            size = max(64 << 10, min(_LOG_SIZE, (16 << 20) // max(len(loading), 1)))
            for name, prog in loading:
                logs[name] = buf = ll.ffi.new("char[]", size)
                ll.bpf_program__set_log_buf(prog, buf, size)
            with _LibbpfCapture() as captured:
                ret = ll.bpf_object__load(handle)
            self._loaded = True  # libbpf allows one load attempt, successful or not
            if ret < 0:
                raise self._load_error(-ret, logs, captured.failed_program())
            # libbpf reads the log buffers only while loading: they can go
            for _name, prog in self._iter_programs():
                ll.bpf_program__set_log_buf(prog, ll.NULL, 0)

    def _load_error(self, err: int, logs: dict[str, Any], culprit: str | None) -> OSError:
        from . import kernel

        failed = [(name, ll.ffi.string(buf).decode(errors="replace")) for name, buf in logs.items()
                  if buf[0] != b"\0"]
        if not failed and culprit is not None:  # refused before verification (EPERM...): no log, named by libbpf
            failed = [(culprit, "")]
        what = f"bpf_object__load({self.path})"
        if err == errno.EPERM:
            who = f"program {failed[0][0]!r} of {self.path}" if failed else self.path
            mode = kernel.lockdown()
            if mode:
                return LoadRefusedError(f"loading {who}", f"kernel lockdown ('{mode}') refuses it (EPERM) even to root")
            if kernel.has_capabilities(kernel.CAP_BPF, kernel.CAP_PERFMON):
                return LoadRefusedError(f"loading {who}", "refused with EPERM although this process holds CAP_BPF and "
                                        "CAP_PERFMON: a security module (LSM) policy or kernel lockdown forbids it")
            return error(err, what, hint="needs root or CAP_BPF (+CAP_PERFMON for tracing, CAP_NET_ADMIN for "
                                         "network programs)")
        if err in (errno.EOPNOTSUPP, 524) and not failed:
            return NotSupportedError(f"loading {self.path}", f"the kernel does not support a feature it uses "
                                                              f"({errno_name(err)}; see logger 'bpflink.libbpf')")
        if failed:
            name, log = failed[0]
            base = libbpf_error(err, f"{what}: program {name!r} refused by the verifier",
                                hint="the verifier's reason is the last lines of the log (exc.log)")
            exc = VerifierError(err if err < 4000 else errno.EINVAL, base.strerror or str(base), log)
            exc.program = name  # type: ignore[attr-defined]
            return exc
        return libbpf_error(err, what, hint="see the libbpf log (logger 'bpflink.libbpf') for the cause")

    # --- attach by section name (bpflink.attach) --------------------------------------------------------------
    def _attach_specs(self) -> list[Any]:
        from .attach.sections import ProgSpec, section_types

        self._handle()  # the caller holds self._lock
        if self._spec_cache is not None:
            return self._spec_cache  # a loaded object's programs, fds and sections do not change (~5 us per program)
        out = []
        for name, prog in self._iter_programs():
            fd = ll.bpf_program__fd(prog)
            if fd < 0:
                continue  # not loaded (autoload off)
            section = _str(ll.bpf_program__section_name(prog))
            try:
                eat: AttachType | None = AttachType(ll.bpf_program__expected_attach_type(prog))
            except ValueError:
                eat = section_types(section)[1]
            out.append(ProgSpec(fd, name, section, ProgType(ll.bpf_program__type(prog)), eat, owner=self))
        if self.loaded:
            self._spec_cache = out
        return out

    def attach(self, prog_name: str, target: Any = None, **options: Any) -> Any:
        """Attach program ``prog_name`` as its section name says; ``target``/``options`` as
        ``bpflink.attach.attach_program`` takes them. Returns a ``bpflink.Link`` that outlives the Object.

        >>> # not run as a doctest: needs a loaded object `obj` with these programs
        >>> link = obj.attach("on_exec")  # SEC("tracepoint/sched/sched_process_exec")  # doctest: +SKIP
        >>> link = obj.attach("egress", "/sys/fs/cgroup/app")  # SEC("cgroup_skb/egress")  # doctest: +SKIP
        """
        from .attach.sections import attach_program

        with self._lock:
            for spec in self._attach_specs():
                if spec.name == prog_name:
                    return attach_program(spec, target, **options)
        raise KeyError(f"{self.path} has no loaded program {prog_name!r}; it has {self.program_names}")

    def attach_all(self, targets: Mapping[str, Any] | None = None, *, skip_untargeted: bool = False) -> Any:
        """Attach every loaded program (all-or-nothing): ``{program name: Link}``.

        ``targets``: ``{program: target}`` for sections that need one (cgroup, xdp, tcx, perf_event...); a
        program that needs one and has none is a ``ValueError`` naming it (``skip_untargeted=True`` leaves it
        out instead). struct_ops callbacks are left out (their map attaches them).
        """
        from .attach.sections import attach_all

        with self._lock:
            return attach_all(self._attach_specs(), targets, skip_untargeted=skip_untargeted)

    def close(self) -> None:
        """Free libbpf's object (programs and maps taken from it stay open). Idempotent, thread-safe."""
        with self._lock:
            handle, self._obj = self._obj, None
            self._vars = None
            self._reader = None
        if handle is not None:
            ll.bpf_object__close(handle)

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_lock", None) is not None:
            self.close()

    def __reduce__(self) -> Any:
        raise TypeError("an Object owns libbpf's bpf_object and cannot be copied or pickled; open the file again")

    def __copy__(self) -> Any:
        raise TypeError("an Object owns libbpf's bpf_object and cannot be copied; open the file again")

    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("an Object owns libbpf's bpf_object and cannot be copied; open the file again")

    def __repr__(self) -> str:
        state = "closed" if self._obj is None else "loaded" if self._loaded else "opened"
        return f"<Object {self.path!r} {state}>"

    # --- programs and maps -----------------------------------------------------------------------------------
    def _iter_programs(self) -> Iterator[tuple[str, Any]]:
        handle = self._handle()
        prog = ll.bpf_object__next_program(handle, ll.NULL)
        while prog != ll.NULL:
            yield _str(ll.bpf_program__name(prog)), prog
            prog = ll.bpf_object__next_program(handle, prog)

    def _iter_maps(self) -> Iterator[tuple[str, Any]]:
        handle = self._handle()
        m = ll.bpf_object__next_map(handle, ll.NULL)
        while m != ll.NULL:
            yield _str(ll.bpf_map__name(m)), m
            m = ll.bpf_object__next_map(handle, m)

    def _find(self, kind: str, name: str) -> Any:
        items = self._iter_programs() if kind == "program" else self._iter_maps()
        found = dict(items)
        if name not in found:
            raise KeyError(f"{self.path} has no {kind} {name!r}; it has {sorted(found)}")
        return found[name]

    @property
    def program_names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._iter_programs()]

    @property
    def map_names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._iter_maps()]

    def _btf_reader(self) -> Reader | None:
        if self._reader is None:
            btf = ll.bpf_object__btf(self._handle())
            if btf == ll.NULL:
                return None
            self._reader = Reader(btf)
        return self._reader

    def _new_map(self, name: str, m: Any) -> Map | None:
        fd = ll.bpf_map__fd(m)
        if fd < 0:
            return None
        key_type = value_type = None
        reader = self._btf_reader()
        if reader is not None and not ll.bpf_map__is_internal(m):
            kid, vid = int(ll.bpf_map__btf_key_type_id(m)), int(ll.bpf_map__btf_value_type_id(m))
            try:
                key_type = reader.ctype(kid) if kid else None
                value_type = reader.ctype(vid) if vid else None
            except ValueError:
                key_type = value_type = None
            if key_type is not None and key_type.size != int(ll.bpf_map__key_size(m)):
                key_type = None
            if value_type is not None and value_type.size != int(ll.bpf_map__value_size(m)):
                value_type = None
        dup = os.dup(fd)
        try:
            return Map(dup, name=name, key_type=key_type, value_type=value_type)
        except BaseException:
            os.close(dup)
            raise

    def maps(self) -> dict[str, Map]:
        """Every created map of the object, as new ``Map`` fd owners (typed by the object's BTF)."""
        with self._lock:
            out = {}
            for name, m in self._iter_maps():
                made = self._new_map(name, m)
                if made is not None:
                    out[name] = made
            return out

    def map(self, name: str) -> Map:
        """Map ``name`` as a new ``Map`` (its own fd); ``KeyError`` if absent, ``ValueError`` before load."""
        with self._lock:
            m = self._find("map", name)
            made = self._new_map(name, m)
            if made is None:
                raise ValueError(f"map {name!r} of {self.path} is not created yet: load() the object first")
            return made

    def program(self, name: str) -> Program:
        """Program ``name`` as a new ``Program`` (its own fd), carrying the object's maps."""
        with self._lock:
            prog = self._find("program", name)
            fd = ll.bpf_program__fd(prog)
            if fd < 0:
                raise ValueError(f"program {name!r} of {self.path} was not loaded")
            maps = self.maps()
            dup = os.dup(fd)
            program = Program(dup, prog_type=ProgType(ll.bpf_program__type(prog)), name=name,
                              expected_attach_type=AttachType(ll.bpf_program__expected_attach_type(prog)),
                              maps=maps)
            program.section_name = _str(ll.bpf_program__section_name(prog))
            return program

    # --- configuration before load ---------------------------------------------------------------------------
    def configure_map(self, name: str, *, max_entries: int | None = None, value_size: int | None = None,
                      pin_path: str | bytes | os.PathLike[str] | None = None, reuse: FdLike | None = None,
                      autocreate: bool | None = None) -> None:
        """Before load: a map's ``max_entries``, ``value_size`` (e.g. a ring buffer's size), bpffs ``pin_path``
        (libbpf reuses a compatible map pinned there, else creates and pins it), ``reuse`` an existing map fd
        (or ``Map``) instead of creating one, ``autocreate``."""
        with self._lock:
            self._before_load("configure_map")
            m = self._find("map", name)
            what = f"{self.path}: map {name!r}"
            if max_entries is not None:
                max_entries = integer("max_entries", max_entries, 1, U32_MAX)
                check(ll.bpf_map__set_max_entries(m, max_entries), f"{what}: set max_entries")
            if value_size is not None:
                value_size = integer("value_size", value_size, 1, U32_MAX)
                check(ll.bpf_map__set_value_size(m, value_size), f"{what}: set value_size")
            if pin_path is not None:
                raw = os.fsencode(pin_path)
                if b"\0" in raw:
                    raise ValueError(f"pin_path must not contain NUL bytes: {raw!r}")
                check(ll.bpf_map__set_pin_path(m, raw), f"{what}: set pin path")
            if reuse is not None:
                check(ll.bpf_map__reuse_fd(m, as_fd(reuse, "reuse")), f"{what}: reuse fd",
                      hint="the map to reuse must have the same type, key/value size and max_entries")
            if autocreate is not None:
                check(ll.bpf_map__set_autocreate(m, bool(autocreate)), f"{what}: set autocreate")

    def configure_program(self, name: str, *, autoload: bool | None = None,
                          attach_target: tuple[FdLike | None, str] | None = None,
                          prog_type: ProgType | None = None,
                          expected_attach_type: AttachType | None = None) -> None:
        """Before load: whether program ``name`` loads, its attach target ``(program or None, function)``
        (freplace target, or a kernel function for fentry/fexit), its program/expected attach type."""
        with self._lock:
            self._before_load("configure_program")
            prog = self._find("program", name)
            what = f"{self.path}: program {name!r}"
            if autoload is not None:
                check(ll.bpf_program__set_autoload(prog, bool(autoload)), f"{what}: set autoload")
            if attach_target is not None:
                target, func = attach_target
                tfd = 0 if target is None else as_fd(target, "attach target")
                fname = os.fsencode(func)
                if b"\0" in fname:
                    raise ValueError("attach target function must not contain NUL bytes")
                check(ll.bpf_program__set_attach_target(prog, tfd, fname),
                      f"bpf_program__set_attach_target({name}, {os.fsdecode(fname)})")
            if prog_type is not None:
                check(ll.bpf_program__set_type(prog, int(ProgType(prog_type))), f"{what}: set type")
            if expected_attach_type is not None:
                check(ll.bpf_program__set_expected_attach_type(prog, int(AttachType(expected_attach_type))),
                      f"{what}: set expected attach type")

    # --- global variables ------------------------------------------------------------------------------------
    @property
    def globals(self) -> Globals:
        """The object's ``.rodata``/``.data``/``.bss`` variables by name (see ``Globals``)."""
        return Globals(self)

    def _variables(self) -> dict[str, tuple[str, int, Any, str, CType]]:
        """name -> (section, offset, libbpf map, C type name, codec); built once per object."""
        if self._vars is None:
            out: dict[str, tuple[str, int, Any, str, CType]] = {}
            reader = self._btf_reader()
            if reader is not None:
                by_datasec = {}
                for _name, m in self._iter_maps():
                    if ll.bpf_map__is_internal(m):
                        by_datasec[int(ll.bpf_map__btf_value_type_id(m))] = m
                for sec, sec_id, variables in reader.datasecs():
                    if not sec.startswith(_GLOBAL_SECTIONS) or sec_id not in by_datasec:
                        continue
                    for vname, off, tid in variables:
                        out[vname] = (sec, off, by_datasec[sec_id], reader.cname(tid), reader.ctype(tid))
            self._vars = out
        return self._vars

    def _memory(self, m: Any, what: str) -> Any:
        size = ll.ffi.new("size_t *")
        ptr = ll.bpf_map__initial_value(m, size)
        if ptr == ll.NULL:
            raise ValueError(f"{what}: its section has no memory user space can reach (not mmap-able here)")
        return ll.ffi.buffer(ll.ffi.cast("char *", ptr), int(size[0]))


class Globals(MutableMapping[str, Any]):
    """``obj.globals``: an object's global variables by name, typed from its BTF.

    Before load, ``globals[name] = value`` sets a ``.rodata`` (``const volatile``), ``.data`` or ``.bss``
    variable's initial value. After load, ``globals[name]`` reads ``.data``/``.bss`` live from the maps' memory
    (and writes them live); ``.rodata`` reads the frozen value and refuses writes. ``KeyError`` for a name the
    object lacks, ``TypeError`` (naming the variable and its C type) for a value that does not fit.
    """

    def __init__(self, obj: Object) -> None:
        self._obj = obj

    def _lookup(self, name: str) -> tuple[str, int, Any, str, CType]:
        variables = self._obj._variables()
        if name not in variables:
            raise KeyError(f"{self._obj.path} has no global variable {name!r} in .rodata/.data/.bss; it has "
                           f"{sorted(variables)}")
        return variables[name]

    def __getitem__(self, name: str) -> Any:
        with self._obj._lock:
            _sec, off, m, _cname, ctype = self._lookup(name)
            mem = self._obj._memory(m, f"global {name!r}")
            return ctype.decode(bytes(mem[off:off + ctype.size]))

    def __setitem__(self, name: str, value: Any) -> None:
        with self._obj._lock:
            sec, off, m, cname, ctype = self._lookup(name)
            raw = _encode(ctype, value, name, cname)
            if self._obj._loaded and sec.startswith(".rodata"):
                raise ValueError(f"global {name!r} ({cname}) is in {sec}, frozen at load: set it between "
                                 "Object.open(path, load=False) and load()")
            mem = self._obj._memory(m, f"global {name!r}")
            mem[off:off + len(raw)] = raw

    def __contains__(self, name: object) -> bool:
        with self._obj._lock:
            return name in self._obj._variables()

    def __iter__(self) -> Iterator[str]:
        with self._obj._lock:
            return iter(list(self._obj._variables()))

    def __len__(self) -> int:
        with self._obj._lock:
            return len(self._obj._variables())

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"global variable {name!r} cannot be deleted, only set")

    def ctype(self, name: str) -> str:
        """The variable's C type as its source declares it (e.g. ``const volatile int``)."""
        with self._obj._lock:
            return self._lookup(name)[3]

    def section(self, name: str) -> str:
        with self._obj._lock:
            return self._lookup(name)[0]


def _encode(ctype: CType, value: Any, name: str, cname: str) -> bytes:
    try:
        return ctype.encode(value, name)
    except TypeError as exc:
        text = str(exc)
        if not text.startswith(f"{name} ({cname})"):  # name the declared type (const volatile ...) as well
            text = f"global {name!r} ({cname}): {text}"
        raise TypeError(text) from None


__all__ = ["Globals", "LoadRefusedError", "Object", "libbpf_error"]
