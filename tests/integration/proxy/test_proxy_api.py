"""Every endpoint of the Toxiproxy API and its error cases, over raw HTTP and toxiproxy-python."""

from __future__ import annotations

import pytest
from proxy_support import EchoServer, ToxiServer, connect, is_listening, round_trip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def err(status: int, message: str) -> dict[str, object]:
    return {"error": message, "status": status}


def test_index_lists_created_proxies_sorted(tp: ToxiServer, echo_server: EchoServer) -> None:
    """GET /proxies maps every proxy by name, keys sorted."""
    tp.create("t-b", echo_server.addr)
    tp.create("t-a", echo_server.addr)
    body = tp.req("GET", "/proxies").json()
    names = [n for n in body if n.startswith("t-")]
    assert names == ["t-a", "t-b"]
    assert body["t-a"]["upstream"] == echo_server.addr and body["t-a"]["toxics"] == []


def test_create_answers_201_with_real_port_and_forwards(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """POST /proxies binds port 0 to a real port, reported in listen, and bytes flow through it."""
    r = tp.req(
        "POST", "/proxies", {"name": "t-c", "upstream": echo_server.addr, "listen": "127.0.0.1:0"}
    )
    assert r.status_code == 201
    body = r.json()
    assert body["enabled"] is True and body["listen"].startswith("127.0.0.1:")
    port = int(body["listen"].rsplit(":", 1)[1])
    assert port != 0
    with connect(port) as sock:
        assert round_trip(sock, b"hello") < 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "", "upstream": "127.0.0.1:1"}, "missing required field: name"),
        ({"name": "t-x"}, "missing required field: upstream"),
        ({}, "missing required field: name"),
    ],
)
def test_create_missing_fields_400(tp: ToxiServer, body: dict[str, str], message: str) -> None:
    """Creating without name or upstream answers 400 naming the field (name checked first)."""
    r = tp.req("POST", "/proxies", body)
    assert r.status_code == 400 and r.json() == err(400, message)


def test_create_empty_and_malformed_bodies_400(tp: ToxiServer) -> None:
    """An empty body is 'bad request body: EOF'; malformed JSON or wrong types are 400 too."""
    r = tp.req("POST", "/proxies", raw=b"")
    assert r.status_code == 400 and r.json() == err(400, "bad request body: EOF")
    for raw in (b"{", b"nul", b'{"name": 5, "upstream": "x:1"}', b"[1]", b'{"enabled": "yes"}'):
        r = tp.req("POST", "/proxies", raw=raw)
        assert r.status_code == 400, raw
        assert r.json()["error"].startswith("bad request body: ")


def test_create_duplicate_name_409(tp: ToxiServer, echo_server: EchoServer) -> None:
    """A second proxy with the same name answers 409 'proxy already exists'."""
    tp.create("t-dup", echo_server.addr)
    r = tp.req(
        "POST", "/proxies", {"name": "t-dup", "upstream": echo_server.addr, "listen": "127.0.0.1:0"}
    )
    assert r.status_code == 409 and r.json() == err(409, "proxy already exists")


def test_oversize_body_413(tp: ToxiServer) -> None:
    """A body over 1 MiB is refused with 413 and a JSON error (embedded server only)."""
    if tp.real:
        pytest.skip("the real server has no body size limit")
    r = tp.req("POST", "/proxies", raw=b'{"name":"' + b"x" * (2 << 20) + b'"}')
    assert r.status_code == 413 and r.json()["status"] == 413


def test_show_update_delete(tp: ToxiServer, echo_server: EchoServer) -> None:
    """GET, PATCH and DELETE /proxies/{proxy} work and answer 404 for unknown names."""
    port = tp.create("t-s", echo_server.addr)
    assert tp.req("GET", "/proxies/t-s").json()["listen"] == f"127.0.0.1:{port}"
    r = tp.req("PATCH", "/proxies/t-s", {"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert not is_listening(port)
    r = tp.req("POST", "/proxies/t-s", {"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is True and is_listening(port)
    assert tp.req("DELETE", "/proxies/t-s").status_code == 204
    for method in ("GET", "DELETE"):
        r = tp.req(method, "/proxies/t-s")
        assert r.status_code == 404 and r.json() == err(404, "proxy not found")
    r = tp.req("PATCH", "/proxies/t-s", {"enabled": True})
    assert r.status_code == 404


def test_update_upstream_restarts_and_changes_target(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """Changing upstream restarts the proxy on the same port, forwarding to the new upstream."""
    other = EchoServer()
    try:
        port = tp.create("t-u", "127.0.0.1:1")
        r = tp.req("PATCH", "/proxies/t-u", {"upstream": other.addr})
        assert r.status_code == 200 and r.json()["upstream"] == other.addr
        with connect(port) as sock:
            round_trip(sock)
    finally:
        other.stop()


def test_update_to_used_port_500(tp: ToxiServer, echo_server: EchoServer) -> None:
    """Moving a proxy onto a port in use answers 500 with the bind error."""
    port_a = tp.create("t-ua", echo_server.addr)
    tp.create("t-ub", echo_server.addr)
    r = tp.req("PATCH", "/proxies/t-ub", {"listen": f"127.0.0.1:{port_a}"})
    assert r.status_code == 500
    assert r.json()["error"] == f"listen tcp 127.0.0.1:{port_a}: bind: address already in use"


def test_toxic_crud(tp: ToxiServer, echo_server: EchoServer) -> None:
    """Create (200), list, show, update and delete (204) a toxic; unknown names answer 404."""
    tp.create("t-tx", echo_server.addr)
    r = tp.req("POST", "/proxies/t-tx/toxics", {"type": "latency", "attributes": {"latency": 10}})
    assert r.status_code == 200
    assert r.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1,
    }
    assert [t["name"] for t in tp.req("GET", "/proxies/t-tx/toxics").json()] == [
        "latency_downstream"
    ]
    assert tp.req("GET", "/proxies/t-tx/toxics/latency_downstream").json()["type"] == "latency"
    r = tp.req("PATCH", "/proxies/t-tx/toxics/latency_downstream", {"attributes": {"latency": 20}})
    assert r.status_code == 200 and r.json()["attributes"] == {"latency": 20, "jitter": 0}
    assert tp.req("DELETE", "/proxies/t-tx/toxics/latency_downstream").status_code == 204
    for method, body in (("GET", None), ("DELETE", None), ("PATCH", {"toxicity": 1})):
        r = tp.req(method, "/proxies/t-tx/toxics/latency_downstream", body)
        assert r.status_code == 404 and r.json() == err(404, "toxic not found")
    for method, path in (("GET", "/toxics"), ("POST", "/toxics"), ("GET", "/toxics/x")):
        r = tp.req(method, "/proxies/t-none" + path, {"type": "noop"})
        assert r.status_code == 404 and r.json() == err(404, "proxy not found")


def test_toxic_errors(tp: ToxiServer, echo_server: EchoServer) -> None:
    """Invalid stream, unknown type and a duplicate name answer 400, 400 and 409."""
    tp.create("t-te", echo_server.addr)
    r = tp.req("POST", "/proxies/t-te/toxics", {"type": "latency", "stream": "sideways"})
    assert r.status_code == 400
    assert r.json() == err(400, "stream was invalid, can be either upstream or downstream")
    for body in ({"type": "down"}, {"type": "nope"}, {"attributes": {}}):
        r = tp.req("POST", "/proxies/t-te/toxics", body)
        assert r.status_code == 400 and r.json() == err(400, "invalid toxic type")
    tp.toxic("t-te", "latency", name="same", latency=1)
    r = tp.req(
        "POST", "/proxies/t-te/toxics", {"type": "noop", "name": "same", "stream": "upstream"}
    )
    assert r.status_code == 409 and r.json() == err(409, "toxic already exists")
    r = tp.req("POST", "/proxies/t-te/toxics", raw=b"")
    assert r.status_code == 400 and r.json() == err(400, "bad request body: EOF")
    r = tp.req("PATCH", "/proxies/t-te/toxics/same", raw=b"")
    assert r.status_code == 400


@pytest.mark.parametrize(
    ("type_", "attrs"),
    [
        ("bandwidth", {"rate": -1}),
        ("bandwidth", {"rate": 0}),
        ("slicer", {"average_size": 0, "size_variation": 0}),
        ("latency", {"latency": -5}),
        ("timeout", {"timeout": -1}),
    ],
)
def test_attributes_that_crash_or_stall_the_real_server_are_400(
    tp: ToxiServer, echo_server: EchoServer, type_: str, attrs: dict[str, int]
) -> None:
    """Attributes that make Toxiproxy crash or stall are refused with 400 (embedded server)."""
    if tp.real:
        pytest.skip(
            "the real server accepts these and then stalls or crashes (reference §7.2, §7.6)"
        )
    tp.create("t-bad", echo_server.addr)
    r = tp.req("POST", "/proxies/t-bad/toxics", {"type": type_, "attributes": attrs})
    assert r.status_code == 400 and r.json()["status"] == 400


def test_reset_enables_and_clears_toxics(tp: ToxiServer, echo_server: EchoServer) -> None:
    """POST /reset answers 204, re-enables proxies and removes toxics without deleting proxies."""
    port = tp.create("t-r", echo_server.addr)
    tp.toxic("t-r", "latency", latency=500)
    tp.req("PATCH", "/proxies/t-r", {"enabled": False})
    assert tp.req("POST", "/reset").status_code == 204
    body = tp.req("GET", "/proxies/t-r").json()
    assert body["enabled"] is True and body["toxics"] == [] and is_listening(port)
    with connect(port) as sock:
        assert round_trip(sock) < 0.4


def test_populate_creates_and_keeps(tp: ToxiServer, echo_server: EchoServer) -> None:
    """POST /populate creates listed proxies (201) and keeps an unchanged one with its toxics."""
    items = [
        {"name": "t-p1", "listen": "127.0.0.1:0", "upstream": echo_server.addr},
        {"name": "t-p2", "listen": "127.0.0.1:0", "upstream": echo_server.addr, "enabled": False},
    ]
    r = tp.req("POST", "/populate", items)
    assert r.status_code == 201
    proxies = r.json()["proxies"]
    assert [p["name"] for p in proxies] == ["t-p1", "t-p2"]
    assert proxies[0]["enabled"] is True and proxies[1]["enabled"] is False
    listen = proxies[0]["listen"]
    tp.toxic("t-p1", "noop")
    r = tp.req(
        "POST", "/populate", [{"name": "t-p1", "listen": listen, "upstream": echo_server.addr}]
    )
    assert r.status_code == 201 and r.json()["proxies"][0]["toxics"][0]["type"] == "noop"


def test_populate_errors(tp: ToxiServer) -> None:
    """/populate refuses an object (400), and a nameless item 2 creates nothing."""
    r = tp.req("POST", "/populate", {"name": "t-x"})
    assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/json")
    items = [
        {"name": "t-q1", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:0"},
        {"upstream": "x:1"},
    ]
    r = tp.req("POST", "/populate", items)
    assert r.status_code == 400
    assert r.json()["error"] == "missing required field: name at proxy 2"
    assert tp.req("GET", "/proxies/t-q1").status_code == 404


def test_toxiproxy_python_client_end_to_end(tp: ToxiServer, echo_server: EchoServer) -> None:
    """The real toxiproxy-python client can create, list, toxic, disable, enable and destroy."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer
    from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

    APIConsumer.host, APIConsumer.port = tp.host, tp.port
    client = Toxiproxy()
    assert client.running()
    assert b"version" in client.version()
    proxy = client.create(upstream=echo_server.addr, name="t-py")
    with pytest.raises(ProxyExists):
        client.create(upstream=echo_server.addr, name="t-py")
    assert "t-py" in client.proxies()
    port = int(proxy.listen.rsplit(":", 1)[1])
    proxy.add_toxic(type="latency", attributes={"latency": 150}, name="lat")
    assert [t.name for t in proxy.toxics().values()] == ["lat"]
    with connect(port) as sock:
        assert 0.14 < round_trip(sock) < 0.3
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", attributes={"latency": 100.0}, name="float")
    proxy.destroy_toxic("lat")
    with proxy.down():
        assert not is_listening(port)
    assert is_listening(port)
    proxy.disable()
    proxy.enable()
    with pytest.raises(NotFound):
        proxy.destroy_toxic("lat")
    assert proxy.destroy()
    assert client.get_proxy("t-py") is None
