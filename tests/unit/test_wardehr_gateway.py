"""The gateway's choice of replica and the stack settings' validation, without processes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from wardehr.gateway import Gateway, Upstream
from wardehr.stack import StackConfig


def gateway(*healthy: bool) -> Gateway:
    """A gateway over replicas r0, r1, ... with the given health."""
    ups = [Upstream(f"r{i}", f"127.0.0.1:{9000 + i}", healthy=h) for i, h in enumerate(healthy)]
    return Gateway(ups, timeout_s=2.0, health_interval_s=0.5, health_timeout_s=0.5)


def test_round_robin_over_healthy_replicas() -> None:
    """Requests alternate between healthy replicas."""
    gw = gateway(True, True)
    firsts = [gw.order()[0].name for _ in range(4)]
    assert firsts == ["r0", "r1", "r0", "r1"]


def test_unhealthy_replicas_are_tried_last() -> None:
    """A replica marked down is never first while another is healthy, but is still tried."""
    gw = gateway(False, True)
    for _ in range(4):
        order = [u.name for u in gw.order()]
        assert order == ["r1", "r0"]


def test_mark_records_transitions_only_on_change() -> None:
    """Marking a replica with its current health records nothing; a change is recorded."""
    up = Upstream("r0", "127.0.0.1:9000")
    up.mark(True, "still fine")
    assert up.transitions == []
    up.mark(False, "refused")
    up.mark(False, "refused again")
    assert [t["healthy"] for t in up.transitions] == [False]


def test_stack_settings_are_checked() -> None:
    """A postgres stack needs a database address; addresses must be host:port."""
    base = {
        "kind": "ward-ehr",
        "gateway": {"listen": "127.0.0.1:1"},
        "replicas": {"a": {"listen": "127.0.0.1:2"}},
    }
    assert StackConfig.model_validate(base).restart_delay == 1.0
    with pytest.raises(ValidationError):
        StackConfig.model_validate({**base, "store": "postgres"})
    with pytest.raises(ValidationError):
        StackConfig.model_validate({**base, "gateway": {"listen": "localhost"}})
    with pytest.raises(ValidationError):
        StackConfig.model_validate({**base, "restart_delay": 5})  # a duration needs a unit


def test_health_check_timeouts_mark_down_only_in_a_row() -> None:
    """A replica answering one health check late stays up; two late checks in a row mark it
    down; a refused check marks a replica down at once (real loopback sockets)."""
    import asyncio
    import socket

    import aiohttp
    from aiohttp import web

    from wardehr.gateway import TIMEOUTS_TO_MARK_DOWN

    async def scenario() -> None:
        delay = {"s": 0.3}

        async def healthz(_: web.Request) -> web.Response:
            await asyncio.sleep(delay["s"])
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        with socket.socket() as s:  # a port nothing listens on: refused
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        slow = Upstream("slow", f"127.0.0.1:{port}")
        gone = Upstream("gone", f"127.0.0.1:{closed}")
        gw = Gateway([slow, gone], timeout_s=2.0, health_interval_s=0.5, health_timeout_s=0.1)
        gw._session = aiohttp.ClientSession()
        try:
            await gw._check(slow)
            assert slow.healthy and slow.check_timeouts == 1  # late once: still up
            for _ in range(TIMEOUTS_TO_MARK_DOWN - 1):
                await gw._check(slow)
            assert not slow.healthy
            delay["s"] = 0.0
            await gw._check(slow)
            assert slow.healthy and slow.check_timeouts == 0
            await gw._check(gone)
            assert not gone.healthy  # refused: at once
        finally:
            await gw.session.close()
            await runner.cleanup()

    asyncio.run(scenario())
