"""``Object``: a compiled BPF ELF object (``clang -target bpf``) opened and loaded through libbpf.

>>> with Object.open("counter.bpf.o") as obj:  # doctest: +SKIP
...     prog = obj.program("count_egress")
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from typing import Any

from . import lowlevel as ll
from ._fd import FdLike, as_fd
from ._native import lib
from .enums import AttachType, ProgType
from .errors import check, error
from .map import Map
from .program import Program


def _str(ptr: Any) -> str:
    return "" if ptr == ll.NULL else ll.ffi.string(ptr).decode()


class Object:
    """A loaded ``bpf_object``. Programs and maps taken from it are dup'ed fds that outlive it."""

    def __init__(self, handle: Any, path: str) -> None:
        self._obj = handle
        self.path = path

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, programs: Iterable[str] | None = None,
             attach_targets: Mapping[str, tuple[FdLike, str]] | None = None) -> Object:
        """Open and load ``path``; with ``programs``, load only those (others keep their autoload off).

        ``attach_targets``: ``{program: (target_program, function)}`` for freplace (EXT) programs, which are
        verified against a global function of an already loaded program (``bpf_program__set_attach_target``).
        """
        spath = os.fspath(path)
        if not os.path.isfile(spath):
            raise FileNotFoundError(errno.ENOENT, f"no BPF object at {spath}")
        handle = lib.bpf_object__open_file(spath.encode(), ll.NULL)
        err = lib.libbpf_get_error(handle)
        if err:
            raise error(-err, f"bpf_object__open_file({spath})")
        obj = cls(handle, spath)
        wanted = None if programs is None else set(programs)
        try:
            if wanted is not None:
                found = {name for name, _ in obj._iter_programs()}
                missing = wanted - found
                if missing:
                    raise KeyError(f"{spath} has no program {sorted(missing)}; it has {sorted(found)}")
                for name, prog in obj._iter_programs():
                    lib.bpf_program__set_autoload(prog, name in wanted)
            for name, (target, func) in (attach_targets or {}).items():
                prog = dict(obj._iter_programs()).get(name)
                if prog is None:
                    raise KeyError(f"{spath} has no program {name!r}; it has {obj.program_names}")
                check(lib.bpf_program__set_attach_target(prog, as_fd(target, "attach target"), func.encode()),
                      f"bpf_program__set_attach_target({name}, {func})")
            check(lib.bpf_object__load(handle), f"bpf_object__load({spath})",
                  hint="see the libbpf log (logger 'bpflink.libbpf') for the verifier's output")
        except BaseException:
            obj.close()
            raise
        return obj

    def _iter_programs(self) -> Iterable[tuple[str, Any]]:
        prog = lib.bpf_object__next_program(self._obj, ll.NULL)
        while prog != ll.NULL:
            yield _str(lib.bpf_program__name(prog)), prog
            prog = lib.bpf_object__next_program(self._obj, prog)

    def _iter_maps(self) -> Iterable[tuple[str, Any]]:
        m = lib.bpf_object__next_map(self._obj, ll.NULL)
        while m != ll.NULL:
            yield _str(lib.bpf_map__name(m)), m
            m = lib.bpf_object__next_map(self._obj, m)

    @property
    def program_names(self) -> list[str]:
        return [name for name, _ in self._iter_programs()]

    def maps(self) -> dict[str, Map]:
        """Every created map of the object, as new ``Map`` fd owners."""
        out = {}
        for name, m in self._iter_maps():
            fd = lib.bpf_map__fd(m)
            if fd >= 0:
                out[name] = Map(os.dup(fd), key_size=0, value_size=0, name=name)
                out[name].key_size = int(lib.bpf_map__key_size(m))
                out[name].value_size = int(lib.bpf_map__value_size(m))
        return out

    def map(self, name: str) -> Map:
        maps = self.maps()
        if name not in maps:
            raise KeyError(f"{self.path} has no map {name!r}; it has {sorted(maps)}")
        wanted = maps.pop(name)
        for other in maps.values():
            other.close()
        return wanted

    def program(self, name: str) -> Program:
        """Program ``name`` as a new ``Program`` (its own fd), carrying the object's maps."""
        for pname, prog in self._iter_programs():
            if pname == name:
                fd = lib.bpf_program__fd(prog)
                if fd < 0:
                    raise ValueError(f"program {name!r} of {self.path} was not loaded")
                program = Program(os.dup(fd), prog_type=ProgType(lib.bpf_program__type(prog)), name=name,
                                  expected_attach_type=AttachType(lib.bpf_program__expected_attach_type(prog)),
                                  maps=self.maps())
                program.section_name = _str(lib.bpf_program__section_name(prog))  # for bpflink.attach
                return program
        raise KeyError(f"{self.path} has no program {name!r}; it has {self.program_names}")

    # --- attach by section name (bpflink.attach) --------------------------------------------------------------
    def _attach_specs(self) -> list[Any]:
        from .attach.sections import ProgSpec, section_types

        if self._obj is None:
            raise ValueError("I/O operation on closed Object")
        out = []
        for name, prog in self._iter_programs():
            fd = lib.bpf_program__fd(prog)
            if fd < 0:
                continue  # not loaded (autoload off)
            section = _str(lib.bpf_program__section_name(prog))
            try:
                eat: AttachType | None = AttachType(lib.bpf_program__expected_attach_type(prog))
            except ValueError:
                eat = section_types(section)[1]
            out.append(ProgSpec(fd, name, section, ProgType(lib.bpf_program__type(prog)), eat, owner=self))
        return out

    def attach(self, prog_name: str, target: Any = None, **options: Any) -> Any:
        """Attach program ``prog_name`` as its section name says; ``target``/``options`` as
        ``bpflink.attach.attach_program`` takes them. Returns a ``bpflink.Link`` that outlives the Object.

        >>> link = obj.attach("on_exec")  # SEC("tracepoint/sched/sched_process_exec")  # doctest: +SKIP
        >>> link = obj.attach("egress", "/sys/fs/cgroup/app")  # SEC("cgroup_skb/egress")  # doctest: +SKIP
        """
        from .attach.sections import attach_program

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

        return attach_all(self._attach_specs(), targets, skip_untargeted=skip_untargeted)

    def close(self) -> None:
        if self._obj is not None:
            lib.bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self) -> Object:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
