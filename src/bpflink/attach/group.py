"""``LinkGroup``: many links made all-or-nothing and closed together, in parallel.

Closing a perf_event, tcx or kprobe link waits for an RCU grace period (~10-40 ms) inside ``close(2)``; bpflink's
close releases the GIL during that call, so closing a group's links from a pool of threads overlaps the waits.

>>> # not run as a doctest: needs a loaded tracepoint program `prog` (tests/test_attach.py)
>>> group = LinkGroup.attach({"exec": lambda: tracepoint(prog, "sched:sched_process_exec"),
...                           "exit": lambda: tracepoint(prog, "sched:sched_process_exit")})  # doctest: +SKIP
>>> group["exec"].info()  # doctest: +SKIP
>>> group.close()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Union

from ..link import Link

Makers = Union[Mapping[str, Callable[[], Link]], Iterable[Callable[[], Link]]]
_MAX_THREADS = 64


def renamed(exc: BaseException, what: str) -> BaseException:
    """``exc`` again with ``what`` in front of its message (same type where the type allows), chained to it."""
    if isinstance(exc, OSError) and type(exc).__module__ == "builtins" and exc.errno is not None:
        return OSError(exc.errno, f"{what}: {exc.strerror}")  # OSError picks the same subclass from errno
    if type(exc) in (ValueError, TypeError, KeyError, LookupError, RuntimeError):
        return type(exc)(f"{what}: {exc.args[0] if exc.args else exc}")
    if hasattr(exc, "add_note"):
        exc.add_note(what)
    return exc


class LinkGroup:
    """Links by name (``group["name"]``), closed together. Iterating yields the links in the order made."""

    def __init__(self, links: Mapping[str, Link] | Iterable[Link] = ()) -> None:
        self._links: dict[str, Link] = {}
        self._lock = threading.Lock()
        self._closed = False
        items = links.items() if isinstance(links, Mapping) else ((str(i), ln) for i, ln in enumerate(links))
        for name, link in items:
            self.add(link, name)

    @classmethod
    def attach(cls, makers: Makers) -> LinkGroup:
        """Call each maker (a function returning a ``Link``) in order; if one raises, close every link made so
        far (in parallel) and re-raise, naming the one that failed and how many were rolled back."""
        group = cls()
        items = list(makers.items()) if isinstance(makers, Mapping) else [
            (str(i), m) for i, m in enumerate(makers)]
        for name, make in items:
            try:
                link = make()
            except BaseException as exc:
                made = len(group)
                group.close()
                new = renamed(exc, f"attaching {name!r} failed ({made} link(s) attached before it were closed)")
                if new is exc:
                    raise
                raise new from exc
            group.add(link, name)
        return group

    def add(self, link: Link, name: str | None = None) -> Link:
        """Add ``link`` (under ``name``, default its position); the group now closes it."""
        if not isinstance(link, Link):
            raise TypeError(f"a LinkGroup holds bpflink.Link objects, not {type(link).__name__}")
        with self._lock:
            self._check_open()
            key = str(len(self._links)) if name is None else name
            if key in self._links:
                raise KeyError(f"the group already has a link named {key!r}")
            self._links[key] = link
        return link

    def __getitem__(self, name: str) -> Link:
        return self._links[name]

    def __contains__(self, name: object) -> bool:
        return name in self._links

    def __iter__(self) -> Iterator[Link]:
        return iter(list(self._links.values()))

    def __len__(self) -> int:
        return len(self._links)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed LinkGroup")

    def items(self) -> list[tuple[str, Link]]:
        self._check_open()
        return list(self._links.items())

    def names(self) -> list[str]:
        self._check_open()
        return list(self._links)

    def as_dict(self) -> dict[str, Link]:
        """The links by name (the group still closes them)."""
        self._check_open()
        return dict(self._links)

    def close(self, *, parallel: bool = True, max_threads: int | None = None) -> None:
        """Close every link (idempotent). ``parallel``: from a pool of threads, so their RCU waits overlap.

        The first error is re-raised after every link has been closed."""
        with self._lock:
            self._closed = True
            links = list(self._links.values())
            self._links.clear()
        if not links:
            return
        errors: list[BaseException] = []

        def close_one(link: Link) -> None:
            try:
                link.close()
            except BaseException as exc:  # keep closing the others
                errors.append(exc)

        if parallel and len(links) > 1:
            workers = max(1, min(len(links), max_threads or _MAX_THREADS))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bpflink-close") as pool:
                list(pool.map(close_one, links))
        else:
            for link in links:
                close_one(link)
        if errors:
            raise errors[0]

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> LinkGroup:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LinkGroup {len(self._links)} link(s)>"

    def __reduce__(self) -> Any:
        raise TypeError("a LinkGroup owns links (file descriptors) and cannot be pickled")


__all__ = ["LinkGroup"]
