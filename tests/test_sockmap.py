"""Sockmap links (kernel >= 6.10): ``BPF_SK_MSG_VERDICT``, ``BPF_SK_SKB_STREAM_PARSER``,
``BPF_SK_SKB_STREAM_VERDICT`` and ``BPF_SK_SKB_VERDICT`` with a sockmap or sockhash as the target.

The sockets are a TCP pair on ``lo`` of a private network namespace. A socket takes the map's programs when it
is *inserted* (measured on 6.18): ``update()`` and ``close()`` of the link change what sockets inserted later
get, so the tests re-insert a socket to see the new program at work.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from bpflink import AttachType, Link, LinkType, Map, MapType, Object, Program, link_create
from bpflink.errors import NotSupportedError
from bpflink.info import SockmapLinkInfo
from honest_skips import link_or_skip, unsupported
from netns import NetPair, netns  # noqa: F401  (fixture)

MSG, PARSER = AttachType.SK_MSG_VERDICT, AttachType.SK_SKB_STREAM_PARSER
STREAM_VERDICT, VERDICT = AttachType.SK_SKB_STREAM_VERDICT, AttachType.SK_SKB_VERDICT


@pytest.fixture
def obj(bpf_objects: dict[str, Path]) -> Iterator[Object]:
    with Object.open(bpf_objects["sk_sockmap"]) as o:
        yield o


@pytest.fixture
def counters(obj: Object) -> Iterator[Map]:
    with obj.map("counters") as m:
        yield m


@pytest.fixture
def pair(netns: NetPair) -> Iterator[tuple[socket.socket, socket.socket]]:  # noqa: F811
    """(client, server): a connected TCP pair on the namespace's lo."""
    with netns.entered():  # sockets belong to the namespace they are created in
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname())
    with listener, client:
        server, _ = listener.accept()
        with server:
            server.settimeout(0.3)
            yield client, server


@pytest.fixture(params=[MapType.SOCKMAP, MapType.SOCKHASH], ids=["sockmap", "sockhash"])
def sockmap(request: pytest.FixtureRequest) -> Iterator[Map]:
    with Map.create(request.param, key_size=4, value_size=4, max_entries=4) as m:
        yield m


def attach(prog: Program, sockmap: Map, at: AttachType) -> Link:
    return link_or_skip("sockmap", prog, sockmap, at)


def received(sock: socket.socket) -> bytes:
    with contextlib.suppress(TimeoutError, socket.timeout):
        return sock.recv(64)
    return b""


def reinsert(sockmap: Map, sock: socket.socket) -> None:
    try:
        sockmap.delete(0)
    except OSError as exc:  # an empty slot: a sockmap answers EINVAL, a sockhash ENOENT
        if exc.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    sockmap.update(0, sock.fileno())


def test_sk_msg_verdict_counts_then_drops_after_update(obj: Object, counters: Map, sockmap: Map,
                                                      pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    with obj.program("msg_pass") as passing, obj.program("msg_drop") as dropping, \
            attach(passing, sockmap, MSG) as link:
        reinsert(sockmap, client)
        client.send(b"hello")
        assert received(server) == b"hello" and counters.lookup_int(0) == 1
        link.update(dropping, old_prog=passing)
        reinsert(sockmap, client)  # the socket takes the map's current program
        with pytest.raises(PermissionError) as exc:  # an SK_DROP verdict fails sendmsg with EACCES
            client.send(b"dropped")
        assert exc.value.errno == errno.EACCES and counters.lookup_int(1) == 1
        assert received(server) == b""
        info = link.info()
        assert isinstance(info, SockmapLinkInfo) and info.type == LinkType.SOCKMAP
        assert info.attach_type == MSG and info.prog_id == dropping.id and info.map_id > 0
    reinsert(sockmap, client)  # link closed: a socket inserted now gets no program
    client.send(b"again")
    assert received(server) == b"again" and counters.lookup_int(1) == 1


def test_sk_skb_stream_parser_and_verdict(obj: Object, counters: Map, sockmap: Map,
                                          pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    with obj.program("skb_parse") as parser, obj.program("skb_stream_drop") as dropping, \
            obj.program("skb_stream_pass") as passing, attach(parser, sockmap, PARSER), \
            attach(dropping, sockmap, STREAM_VERDICT) as verdict:
        reinsert(sockmap, server)
        client.send(b"eaten")
        assert received(server) == b""  # dropped on the receive path
        assert counters.lookup_int(2) >= 1 and counters.lookup_int(4) >= 1
        verdict.update(passing)
        reinsert(sockmap, server)
        client.send(b"served")
        assert received(server) == b"served"
        assert counters.lookup_int(3) >= 1


def test_sk_skb_verdict_drops_and_excludes_stream_verdict(obj: Object, counters: Map, sockmap: Map,
                                                          pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    with obj.program("skb_verdict_drop") as dropping, obj.program("skb_stream_pass") as stream, \
            attach(dropping, sockmap, VERDICT):
        reinsert(sockmap, server)
        client.send(b"gone")
        assert received(server) == b""
        assert counters.lookup_int(5) >= 1
        # a map runs either a verdict or a stream verdict program, not both
        with pytest.raises(OSError, match="verdict") as exc:
            link_create(stream, sockmap, STREAM_VERDICT).close()
        assert exc.value.errno == errno.EBUSY
    reinsert(sockmap, server)
    client.send(b"back")
    assert received(server) == b"back"


def test_sockmap_target_must_be_a_sockmap(obj: Object) -> None:
    with obj.program("msg_pass") as prog, Map.array() as array, pytest.raises(OSError) as exc:
        link_create(prog, array, MSG).close()
    if isinstance(exc.value, NotSupportedError):
        unsupported("sockmap", exc.value)
    assert exc.value.errno == errno.EINVAL and "sockhash" in str(exc.value)
