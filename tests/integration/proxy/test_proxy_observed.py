"""One test per **[observed]** fact of shared/reference/toxiproxy-api.md, named by its section.

Where the embedded server deliberately differs (listed in docs/proxy.md), the test asserts
the real server's observed behaviour when run against it and ours otherwise.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from proxy_support import (
    EchoServer,
    ToxiServer,
    connect,
    is_listening,
    read_outcome,
    recv_all,
    recv_exact,
    round_trip,
    within_tries,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_s1_router_exact_paths_and_percent_decoding(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """§1 Router: '/proxies/' is a plain 404 and 'a%20b' addresses the proxy 'a b'."""
    r = tp.req("GET", "/proxies/")
    assert r.status_code == 404 and r.text == "404 page not found\n"
    tp.create("t a", echo_server.addr)
    r = tp.req("GET", "/proxies/t%20a")
    assert r.status_code == 200 and r.json()["name"] == "t a"


def test_s1_unknown_path_plain_404(tp: ToxiServer) -> None:
    """§1 Unknown path: 404 with '404 page not found\\n' as text/plain, not JSON."""
    r = tp.req("GET", "/nope")
    assert r.status_code == 404 and r.text == "404 page not found\n"
    assert r.headers["Content-Type"].startswith("text/plain")


def test_s1_wrong_method_405_empty(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§1 Known path, wrong method: 405 with an empty body (PUT, HEAD)."""
    tp.create("t-m", echo_server.addr)
    for method, path in (("PUT", "/proxies/t-m"), ("HEAD", "/proxies"), ("DELETE", "/version")):
        r = tp.req(method, path)
        assert r.status_code == 405 and r.content == b"", (method, path)


def test_s1_browser_user_agent_403(tp: ToxiServer) -> None:
    """§1 Browser block: a 'Mozilla/' user agent gets 403 'User agent not allowed\\n'."""
    r = tp.req("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert r.status_code == 403 and r.text == "User agent not allowed\n"
    assert (
        tp.req("GET", "/proxies", headers={"User-Agent": "toxiproxy-cli/2.12"}).status_code == 200
    )


def test_s1_request_id_header(tp: ToxiServer) -> None:
    """§1 Request id: routed responses carry a distinct X-Toxiproxy-Request-Id."""
    ids = {tp.req("GET", "/proxies").headers["X-Toxiproxy-Request-Id"] for _ in range(3)}
    assert len(ids) == 3 and all(ids)


def test_s1_request_body_go_decoding(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§1 Request body: content type ignored, keys case-insensitive, null keeps the default."""
    raw = json.dumps(
        {
            "NAME": "t-ci",
            "Upstream": echo_server.addr,
            "listen": "127.0.0.1:0",
            "enabled": None,
            "extra": 1,
        }
    )
    r = tp.req("POST", "/proxies", raw=raw, headers={"Content-Type": "text/weird"})
    assert r.status_code == 201 and r.json()["name"] == "t-ci" and r.json()["enabled"] is True
    r = tp.req("POST", "/proxies", raw=b'{"name": "t-ci2", "upstream": 7}')
    assert r.status_code == 400


@pytest.mark.parametrize("value", ["100.0", "1e3", "1.5", '"100"'])
def test_s1_integer_attributes_refuse_floats(
    tp: ToxiServer, echo_server: EchoServer, value: str
) -> None:
    """§1 Integer attributes: 100.0, 1e3, 1.5 and "100" are refused with 400."""
    tp.create("t-int", echo_server.addr)
    raw = '{"type": "latency", "attributes": {"latency": ' + value + "}}"
    r = tp.req("POST", "/proxies/t-int/toxics", raw=raw)
    assert r.status_code == 400
    if value == "100.0":
        assert r.json()["error"] == (
            "bad request body: json: cannot unmarshal number 100.0 into Go struct field "
            "LatencyToxic.attributes.latency of type int64"
        )


def test_s1_metrics_absent_without_flags(tp: ToxiServer) -> None:
    """§1 /metrics: 404 unless metrics flags were given (the embedded server has none)."""
    r = tp.req("GET", "/metrics")
    if tp.real and r.status_code == 200:
        pytest.skip("this real server was started with metrics flags")
    assert r.status_code == 404


def test_s1_1_success_bodies_compact_json(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§1.1 Success bodies are compact JSON, application/json, without a trailing newline."""
    tp.create("t-j", echo_server.addr)
    r = tp.req("GET", "/proxies/t-j")
    assert r.headers["Content-Type"] == "application/json"
    assert not r.text.endswith("\n") and ", " not in r.text and '": ' not in r.text


def test_s1_1_error_bodies(tp: ToxiServer) -> None:
    """§1.1 Errors: JSON {error,status} plus newline, sent as text/plain with nosniff."""
    r = tp.req("GET", "/proxies/t-missing")
    assert r.text == '{"error":"proxy not found","status":404}\n'
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_s1_1_socket_errors_are_500(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§1.1 Socket errors become 500 with Go's text: port in use, missing port."""
    port = tp.create("t-e1", echo_server.addr)
    r = tp.req(
        "POST",
        "/proxies",
        {"name": "t-e2", "upstream": echo_server.addr, "listen": f"127.0.0.1:{port}"},
    )
    assert r.status_code == 500
    assert r.json()["error"] == f"listen tcp 127.0.0.1:{port}: bind: address already in use"
    r = tp.req(
        "POST", "/proxies", {"name": "t-e3", "upstream": echo_server.addr, "listen": "bogus"}
    )
    assert r.status_code == 500
    assert r.json()["error"] == "listen tcp: address bogus: missing port in address"
    assert tp.req("GET", "/proxies/t-e2").status_code == 404


def test_s2_1_proxy_key_order(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.1 Proxy object keys come as name, listen, upstream, enabled, (Logger,) toxics."""
    tp.create("t-k", echo_server.addr)
    keys = [k for k in tp.req("GET", "/proxies/t-k").json() if k != "Logger"]
    assert keys == ["name", "listen", "upstream", "enabled", "toxics"]


def test_s2_1_upstream_not_validated(tp: ToxiServer) -> None:
    """§2.1 upstream is not resolved at create time: 'x:1' is accepted."""
    r = tp.req("POST", "/proxies", {"name": "t-x1", "upstream": "x:1", "listen": "127.0.0.1:0"})
    assert r.status_code == 201 and r.json()["upstream"] == "x:1"


def test_s2_1_logger_artifact(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.1 Logger: the real server sends "Logger":{}; the embedded one omits it (documented)."""
    tp.create("t-l", echo_server.addr)
    body = tp.req("GET", "/proxies/t-l").json()
    assert (body.get("Logger") == {}) if tp.real else ("Logger" not in body)


def test_s2_1_toxics_upstream_first(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.1 toxics: upstream-stream toxics first, then downstream, each in insertion order."""
    tp.create("t-o", echo_server.addr)
    for name, stream in (
        ("d1", "downstream"),
        ("u1", "upstream"),
        ("d2", "downstream"),
        ("u2", "upstream"),
    ):
        tp.toxic("t-o", "noop", stream=stream, name=name)
    names = [t["name"] for t in tp.req("GET", "/proxies/t-o").json()["toxics"]]
    assert names == ["u1", "u2", "d1", "d2"]
    assert [t["name"] for t in tp.req("GET", "/proxies/t-o/toxics").json()] == names


def test_s2_2_toxic_key_order(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.2 Toxic object keys come as attributes, name, type, stream, toxicity."""
    tp.create("t-tk", echo_server.addr)
    assert list(tp.toxic("t-tk", "latency", latency=100)) == [
        "attributes",
        "name",
        "type",
        "stream",
        "toxicity",
    ]


def test_s2_2_stream_case_and_empty(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.2 stream: case-insensitive, echoed verbatim; "" rejected; absent means downstream."""
    tp.create("t-st", echo_server.addr)
    r = tp.req(
        "POST",
        "/proxies/t-st/toxics",
        {"type": "bandwidth", "stream": "UPSTREAM", "attributes": {"rate": 100}},
    )
    assert r.json()["stream"] == "UPSTREAM" and r.json()["name"] == "bandwidth_UPSTREAM"
    r = tp.req("POST", "/proxies/t-st/toxics", {"type": "noop", "stream": ""})
    assert r.status_code == 400
    r = tp.req("POST", "/proxies/t-st/toxics", {"type": "noop", "name": ""})
    assert r.json()["stream"] == "downstream" and r.json()["name"] == "noop_downstream"


def test_s2_2_toxicity_not_range_checked(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.2 toxicity: 7 and -1 are accepted and echoed; 0 is kept."""
    tp.create("t-tt", echo_server.addr)
    for name, value in (("a", 7), ("b", -1), ("c", 0), ("d", 0.2)):
        assert tp.toxic("t-tt", "noop", name=name, toxicity=value)["toxicity"] == pytest.approx(
            value
        )


def test_s2_2_attributes_defaults_and_echo(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§2.2 attributes: unknown keys ignored, null or {} give zeros, all echoed, noop echoes {}."""
    tp.create("t-at", echo_server.addr)
    r = tp.req("POST", "/proxies/t-at/toxics", {"type": "latency", "name": "n", "attributes": None})
    assert r.json()["attributes"] == {"latency": 0, "jitter": 0}
    r = tp.req(
        "POST",
        "/proxies/t-at/toxics",
        {"type": "latency", "name": "u", "attributes": {"latency": 5, "bogus": 1}},
    )
    assert r.json()["attributes"] == {"latency": 5, "jitter": 0}
    assert tp.toxic("t-at", "noop")["attributes"] == {}


def test_s3_2_create_disabled_echoes_listen(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.2 A proxy created disabled is stored unbound with listen echoed verbatim."""
    r = tp.req(
        "POST",
        "/proxies",
        {"name": "t-dis", "upstream": echo_server.addr, "listen": "localhost:0", "enabled": False},
    )
    assert r.status_code == 201 and r.json()["listen"] == "localhost:0"
    assert r.json()["enabled"] is False
    r = tp.req("POST", "/proxies/t-dis", {"enabled": True})
    assert r.json()["listen"].startswith("127.0.0.1:") and r.json()["enabled"] is True


def test_s3_3_populate_port_zero_replaced_every_call(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """§3.3 A populate item with port 0 replaces the running proxy (and its toxics) every call."""
    item = [{"name": "t-pz", "listen": "127.0.0.1:0", "upstream": echo_server.addr}]
    first = tp.req("POST", "/populate", item).json()["proxies"][0]
    tp.toxic("t-pz", "noop")
    second = tp.req("POST", "/populate", item).json()["proxies"][0]
    assert second["toxics"] == [] and second["listen"] != first["listen"]


def test_s3_3_populate_empty_array(tp: ToxiServer) -> None:
    """§3.3 Populating an empty array answers 201 {"proxies":null}."""
    r = tp.req("POST", "/populate", [])
    assert r.status_code == 201 and r.json() == {"proxies": None}


def test_s3_3_populate_stops_at_first_failure(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.3 Items p7 ok, p8 listen 'bogus', p9: 500, p7 created, p8 and p9 not."""
    items = [
        {"name": n, "listen": listen, "upstream": echo_server.addr}
        for n, listen in (("t-p7", "127.0.0.1:0"), ("t-p8", "bogus"), ("t-p9", "127.0.0.1:0"))
    ]
    r = tp.req("POST", "/populate", items)
    assert r.status_code == 500
    body = r.json()
    assert body["status"] == 500 and [p["name"] for p in body["proxies"]] == ["t-p7"]
    assert tp.req("GET", "/proxies/t-p7").status_code == 200
    assert tp.req("GET", "/proxies/t-p8").status_code == 404
    assert tp.req("GET", "/proxies/t-p9").status_code == 404


def test_s3_5_update_ignores_name_and_needs_body(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.5 A name in an update body is ignored (no rename); an empty body is 400 EOF."""
    tp.create("t-rn", echo_server.addr)
    r = tp.req("POST", "/proxies/t-rn", {"name": "t-other", "enabled": True})
    assert r.status_code == 200 and r.json()["name"] == "t-rn"
    assert tp.req("GET", "/proxies/t-other").status_code == 404
    r = tp.req("PATCH", "/proxies/t-rn", raw=b"")
    assert r.status_code == 400 and r.json()["error"] == "bad request body: EOF"


def test_s3_5_listen_port_zero_moves_proxy(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.5 Updating a running proxy to listen 127.0.0.1:0 moves it to a new port."""
    port = tp.create("t-mv", echo_server.addr)
    r = tp.req("PATCH", "/proxies/t-mv", {"listen": "127.0.0.1:0"})
    new_port = int(r.json()["listen"].rsplit(":", 1)[1])
    assert new_port not in (0, port) and is_listening(new_port)


def test_s3_5_hostname_spelling_is_not_a_change(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.5 Updating listen to localhost:P for a proxy on 127.0.0.1:P keeps its connections."""
    port = tp.create("t-hn", echo_server.addr)
    with connect(port) as sock:
        round_trip(sock)
        r = tp.req("PATCH", "/proxies/t-hn", {"listen": f"localhost:{port}"})
        assert r.status_code == 200 and r.json()["listen"] == f"127.0.0.1:{port}"
        assert round_trip(sock) < 0.5


def test_s3_6_second_delete_404(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.6 Deleting twice: 204, then 404 'proxy not found'."""
    port = tp.create("t-dd", echo_server.addr)
    assert tp.req("DELETE", "/proxies/t-dd").status_code == 204
    assert not is_listening(port)
    r = tp.req("DELETE", "/proxies/t-dd")
    assert r.status_code == 404 and r.json()["error"] == "proxy not found"


def test_s3_9_update_ignores_name_type_stream(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.9 A toxic update silently ignores name, type and stream."""
    tp.create("t-tu", echo_server.addr)
    tp.toxic("t-tu", "latency", latency=10)
    r = tp.req(
        "PATCH",
        "/proxies/t-tu/toxics/latency_downstream",
        {"name": "x", "type": "bandwidth", "stream": "upstream", "attributes": {"latency": 11}},
    )
    body = r.json()
    assert (body["name"], body["type"], body["stream"]) == (
        "latency_downstream",
        "latency",
        "downstream",
    )
    assert body["attributes"]["latency"] == 11


def test_s3_9_update_merges_attributes(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.9 attributes are merged and toxicity kept when absent."""
    tp.create("t-tm", echo_server.addr)
    tp.toxic("t-tm", "latency", latency=100, toxicity=0.5)
    r = tp.req("PATCH", "/proxies/t-tm/toxics/latency_downstream", {"attributes": {"jitter": 5}})
    assert r.json()["attributes"] == {"latency": 100, "jitter": 5}
    assert r.json()["toxicity"] == pytest.approx(0.5)


def test_s3_10_version_format(tp: ToxiServer) -> None:
    """§3.10 /version: {"version": "..."} with a space, a trailing newline, JSON charset type."""
    r = tp.req("GET", "/version")
    assert r.status_code == 200 and r.text.startswith('{"version": "') and r.text.endswith('"}\n')
    assert r.headers["Content-Type"] == "application/json;charset=utf-8"
    assert json.loads(r.text)["version"]


def test_s3_11_reset_keeps_connections(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§3.11 /reset removes toxics without closing live connections or deleting proxies."""
    port = tp.create("t-rs", echo_server.addr)
    with connect(port) as sock:
        round_trip(sock)
        tp.toxic("t-rs", "latency", latency=300)
        assert tp.req("POST", "/reset").status_code == 204
        assert round_trip(sock) < 0.25
    assert tp.req("GET", "/proxies/t-rs").json()["toxics"] == []


def test_s3_12_metrics_counted_when_links_finish(tp: ToxiServer) -> None:
    """§3.12 Byte counters of /metrics on a real Toxiproxy started with -proxy-metrics; the
    embedded server does not implement /metrics and says so with 404 (docs/proxy.md)."""
    r = tp.req("GET", "/metrics")
    if not tp.real:
        assert r.status_code == 404
        return
    if r.status_code == 404:
        pytest.skip("start the real Toxiproxy with -proxy-metrics to check its /metrics")
    assert r.status_code == 200 and "toxiproxy_proxy" in r.text


def test_s4_localhost_resolved(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§4 localhost:0 is reported as 127.0.0.1:<port> once bound."""
    r = tp.req(
        "POST", "/proxies", {"name": "t-lh", "upstream": echo_server.addr, "listen": "localhost:0"}
    )
    assert r.json()["listen"].startswith("127.0.0.1:")


def test_s4_listen_omitted(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§4 listen omitted: the real server binds every interface ([::]); ours binds 127.0.0.1."""
    r = tp.req("POST", "/proxies", {"name": "t-lo", "upstream": echo_server.addr})
    assert r.status_code == 201
    assert r.json()["listen"].startswith("[::]:" if tp.real else "127.0.0.1:")


def test_s4_disable_enable_and_reset_rebind_same_port(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """§4 disable then enable, and /reset, re-bind the same port."""
    port = tp.create("t-rb", echo_server.addr)
    tp.req("POST", "/proxies/t-rb", {"enabled": False})
    assert (
        tp.req("POST", "/proxies/t-rb", {"enabled": True}).json()["listen"] == f"127.0.0.1:{port}"
    )
    tp.req("POST", "/proxies/t-rb", {"enabled": False})
    tp.req("POST", "/reset")
    assert tp.req("GET", "/proxies/t-rb").json()["listen"] == f"127.0.0.1:{port}"
    assert is_listening(port)


def test_s5_1_upstream_down_accept_then_eof(tp: ToxiServer) -> None:
    """§5.1 Upstream down: the client's connect succeeds, then it reads EOF."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    port = tp.create("t-down", f"127.0.0.1:{dead}")
    with connect(port, timeout=5) as sock:
        assert read_outcome(sock) == "eof"


def test_s5_2_disable_closes_connections_keeps_toxics(
    tp: ToxiServer, echo_server: EchoServer
) -> None:
    """§5.2 Disable closes existing connections, refuses new ones, and keeps the toxics."""
    port = tp.create("t-dc", echo_server.addr)
    tp.toxic("t-dc", "noop")
    with connect(port) as sock:
        round_trip(sock)
        tp.req("POST", "/proxies/t-dc", {"enabled": False})
        assert read_outcome(sock) in ("eof", "reset")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
    assert len(tp.req("GET", "/proxies/t-dc").json()["toxics"]) == 1


def test_s5_3_half_close(tp: ToxiServer) -> None:
    """§5.3 Client half-close: the real server loses the reply; ours delivers it (documented)."""

    def reply_after_eof(conn: socket.socket) -> None:
        data = recv_all(conn)
        conn.sendall(b"got " + data)

    server = EchoServer(reply_after_eof)
    try:
        port = tp.create("t-hc", server.addr)
        with connect(port) as sock:
            sock.sendall(b"question")
            sock.shutdown(socket.SHUT_WR)
            assert recv_all(sock) == (b"" if tp.real else b"got question")
    finally:
        server.stop()


def test_s6_1_latency_on_both_streams_adds_up(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§6.1 200 ms upstream plus 300 ms downstream give about 500 ms per round trip."""
    port = tp.create("t-two", echo_server.addr)
    tp.toxic("t-two", "latency", stream="upstream", latency=200)
    tp.toxic("t-two", "latency", stream="downstream", latency=300)

    def measure() -> float:
        with connect(port) as sock:
            return round_trip(sock)

    assert 0.495 < within_tries(measure, lambda e: 0.495 < e < 0.53) < 0.53


def test_s6_3_toxicity_per_connection(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§6.3 toxicity 0.5: each fresh connection is either always delayed or never, some of each."""
    port = tp.create("t-tox", echo_server.addr)
    tp.toxic("t-tox", "latency", latency=150, toxicity=0.5)
    delayed = 0
    for _ in range(12):
        with connect(port) as sock:
            first, second = round_trip(sock) > 0.1, round_trip(sock) > 0.1
            assert first == second
            delayed += first
    assert 1 <= delayed <= 11


def test_s6_4_timeout_removal_closes(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§6.4 Removing a timeout toxic closes the connection it held (EOF)."""
    port = tp.create("t-tr", echo_server.addr)
    with connect(port, timeout=3) as sock:
        round_trip(sock)
        tp.toxic("t-tr", "timeout", timeout=0)
        sock.sendall(b"lost")
        time.sleep(0.1)
        t0 = time.monotonic()
        tp.req("DELETE", "/proxies/t-tr/toxics/timeout_downstream")
        assert read_outcome(sock) in ("eof", "reset") and time.monotonic() - t0 < 1.0


def test_s7_1_latency_and_jitter(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.1 downstream latency 300 gives 300 ms round trips; 200±100 stays in 0.1–0.3 s."""
    port = tp.create("t-lat", echo_server.addr)
    tp.toxic("t-lat", "latency", latency=300)

    def measure() -> float:
        with connect(port) as sock:
            return round_trip(sock)

    elapsed = within_tries(measure, lambda e: 0.298 < e < 0.32, tries=5)
    assert 0.298 < elapsed < 0.32
    tp.req(
        "PATCH",
        "/proxies/t-lat/toxics/latency_downstream",
        {"attributes": {"latency": 200, "jitter": 100}},
    )

    def trips() -> list[float]:
        with connect(port) as sock:
            return [round_trip(sock) for _ in range(5)]

    times = within_tries(trips, lambda ts: all(0.099 < t < 0.31 for t in ts))
    assert all(0.099 < t < 0.31 for t in times) and max(times) - min(times) > 0.005


def test_s7_2_bandwidth_and_rate_zero(tp: ToxiServer) -> None:
    """§7.2 50,000 bytes at 100 KB/s take about 0.5 s; rate 0 stalls (real) or is 400 (ours)."""

    def sink(conn: socket.socket) -> None:
        conn.sendall(b"x" * 50_000)
        recv_all(conn)

    server = EchoServer(sink)
    try:
        port = tp.create("t-bw", server.addr)
        tp.toxic("t-bw", "bandwidth", rate=100)
        with connect(port) as sock:
            t0 = time.perf_counter()
            assert len(recv_exact(sock, 50_000)) == 50_000
            assert 0.47 < time.perf_counter() - t0 < 0.56
        r = tp.req(
            "PATCH", "/proxies/t-bw/toxics/bandwidth_downstream", {"attributes": {"rate": 0}}
        )
        if not tp.real:
            assert r.status_code == 400
            return
        with connect(port, timeout=0.5) as sock:
            assert read_outcome(sock) == "timeout"
    finally:
        server.stop()


def test_s7_3_slow_close(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.3 With slow_close 500 downstream, EOF reaches the client about 0.5 s after the close."""
    port = tp.create("t-sc", echo_server.addr)
    tp.toxic("t-sc", "slow_close", delay=500)
    with connect(port) as sock:
        round_trip(sock)
        t0 = time.perf_counter()
        sock.shutdown(socket.SHUT_WR)
        assert read_outcome(sock) == "eof"
        assert 0.49 < time.perf_counter() - t0 < 0.6


def test_s7_4_timeout_closes_idle_connection(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.4 timeout 300: a new connection with no data is closed after about 0.3 s."""
    port = tp.create("t-to", echo_server.addr)
    tp.toxic("t-to", "timeout", timeout=300)
    with connect(port) as sock:
        t0 = time.perf_counter()
        assert read_outcome(sock) in ("eof", "reset")
        assert 0.29 < time.perf_counter() - t0 < 0.4


def test_s7_5_reset_peer_after_timeout(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.5 reset_peer timeout 200: the client gets ECONNRESET about 0.2 s after sending."""
    port = tp.create("t-rp", echo_server.addr)
    tp.toxic("t-rp", "reset_peer", stream="upstream", timeout=200)
    with connect(port) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"hello")
        assert read_outcome(sock) == "reset"
        assert 0.19 < time.perf_counter() - t0 < 0.3


def test_s7_5_reset_peer_idle_never_reset(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.5 No data, no reset: an idle connection under reset_peer stays open."""
    port = tp.create("t-ri", echo_server.addr)
    tp.toxic("t-ri", "reset_peer", stream="upstream", timeout=0)
    with connect(port, timeout=0.5) as sock:
        assert read_outcome(sock) == "timeout"


def test_s7_5_reset_peer_on_open_connection(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.5 Added to an open connection: real server closes with FIN; ours resets (documented)."""
    port = tp.create("t-ro", echo_server.addr)
    with connect(port) as sock:
        round_trip(sock)
        tp.toxic("t-ro", "reset_peer", stream="upstream", timeout=0)
        sock.sendall(b"hello")
        assert read_outcome(sock) == ("eof" if tp.real else "reset")


def test_s7_6_slicer_zero_sizes_refused(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§7.6 slicer with average_size 0 crashes the real server; ours refuses it with 400."""
    if tp.real:
        pytest.skip("would crash the real server (reference §7.6)")
    tp.create("t-sl", echo_server.addr)
    r = tp.req("POST", "/proxies/t-sl/toxics", {"type": "slicer", "attributes": {}})
    assert r.status_code == 400


def test_s7_7_limit_data_truncates_then_closes(tp: ToxiServer) -> None:
    """§7.7 limit_data 5 downstream: 5 of 10 bytes are delivered, then EOF."""

    def talk(conn: socket.socket) -> None:
        conn.sendall(b"0123456789")
        recv_all(conn)

    server = EchoServer(talk)
    try:
        port = tp.create("t-ld", server.addr)
        tp.toxic("t-ld", "limit_data", bytes=5)
        with connect(port) as sock:
            assert recv_all(sock) == b"01234"
    finally:
        server.stop()


def test_s9_toxiproxy_python_calls(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§9 toxiproxy-python's populate, get_proxy, add/get toxic, reset and destroy all work."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer

    APIConsumer.host, APIConsumer.port = tp.host, tp.port
    client = Toxiproxy()
    created = client.populate(
        [
            {"name": "t-c1", "upstream": echo_server.addr},
            {"name": "t-c2", "upstream": echo_server.addr},
        ]
    )
    assert sorted(p.name for p in created) == ["t-c1", "t-c2"]
    proxy = client.get_proxy("t-c1")
    assert proxy is not None and proxy.enabled
    proxy.add_toxic(type="bandwidth", stream="upstream", attributes={"rate": 1000})
    assert proxy.get_toxic("bandwidth_upstream").attributes == {"rate": 1000}
    assert client.reset()
    assert proxy.toxics() == {}
    for p in list(client.proxies().values()):
        if p.name.startswith("t-"):
            p.destroy()
    assert client.get_proxy("t-c2") is None


def test_s9_3_python_floats_invalid_toxic(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§9.3 A Python float attribute (100.0) raises InvalidToxic from the client."""
    from toxiproxy import Toxiproxy
    from toxiproxy.api import APIConsumer
    from toxiproxy.exceptions import InvalidToxic

    APIConsumer.host, APIConsumer.port = tp.host, tp.port
    proxy = Toxiproxy().create(upstream=echo_server.addr, name="t-fl")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", attributes={"latency": 100.0})


def test_s10_go_cli_requests(tp: ToxiServer, echo_server: EchoServer) -> None:
    """§10 toxiproxy-cli's request shapes work (toggle, PATCH update) and 1.5 is refused."""
    headers = {
        "User-Agent": "toxiproxy-cli/2.12.0 (linux/amd64)",
        "Content-Type": "application/json",
    }
    r = tp.req(
        "POST",
        "/proxies",
        {
            "name": "t-cli",
            "listen": "127.0.0.1:0",
            "upstream": echo_server.addr,
            "enabled": True,
            "toxics": None,
        },
        headers=headers,
    )
    assert r.status_code == 201
    whole = r.json()
    whole["enabled"] = False
    r = tp.req("POST", "/proxies/t-cli", whole, headers=headers)
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = tp.req(
        "POST",
        "/proxies/t-cli/toxics",
        {
            "name": "",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 1000},
        },
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["name"] == "latency_downstream"
    r = tp.req(
        "PATCH",
        "/proxies/t-cli/toxics/latency_downstream",
        {"attributes": {"latency": 5}, "toxicity": 1.0},
        headers=headers,
    )
    assert r.status_code == 200 and r.json()["attributes"]["latency"] == 5
    r = tp.req(
        "POST",
        "/proxies/t-cli/toxics",
        {"name": "j", "type": "latency", "attributes": {"jitter": 1.5}},
        headers=headers,
    )
    assert r.status_code == 400
    assert tp.req("DELETE", "/proxies/t-cli/toxics/latency_downstream").status_code == 204
