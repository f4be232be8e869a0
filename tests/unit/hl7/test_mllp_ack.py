"""MLLP framing and ACK semantics against a real MLLP socket (tests/support/mllp_peer.py):
original and enhanced modes, an ACK matched to its message by MSA-2 (a stale ACK for an earlier
message is never taken for this one), no ACK in time is *unacknowledged*, frames survive any
chunking of the stream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.mllp_peer import Behaviour, MllpPeer

from resildrill.drill.model import ProbeSpec
from resildrill.hl7.ack import judge_ack, make_ack
from resildrill.hl7.messages import MessageFactory, Patient, Result
from resildrill.hl7.mllp import FrameDecoder, MllpClient, frame
from resildrill.observe.probes import Probe

pytestmark = pytest.mark.timeout(60)
PATIENT = Patient("SYN0042", "Testpatient", "Beta")


@pytest.fixture
def peer() -> Iterator[MllpPeer]:
    p = MllpPeer()
    yield p
    p.stop()


def _oru(f: MessageFactory, mode: str = "original") -> tuple[str, str]:
    return f.oru(PATIENT, [Result("718-7", "Hemoglobin", "13.2", "g/dL")], mode=mode)


@pytest.mark.parametrize(
    ("code", "mode", "verdict"),
    [
        ("AA", "original", "accepted"),
        ("AE", "original", "error"),
        ("AR", "original", "rejected"),
        ("CA", "enhanced", "accepted"),
        ("CE", "enhanced", "error"),
        ("CR", "enhanced", "rejected"),
    ],
)
def test_ack_codes(peer: MllpPeer, code: str, mode: str, verdict: str) -> None:
    peer.behaviour = Behaviour(code=code)
    f = MessageFactory("t")
    client = MllpClient("127.0.0.1", peer.port, timeout_s=2)
    message, cid = _oru(f, mode)
    result = client.send(message, cid)
    client.close()
    assert (result.verdict, result.code, result.acknowledged_id) == (verdict, code, cid)
    assert peer.received == [cid]


def test_no_ack_in_time_is_unacknowledged(peer: MllpPeer) -> None:
    peer.behaviour = Behaviour(silent=True)
    client = MllpClient("127.0.0.1", peer.port, timeout_s=0.3)
    message, cid = _oru(MessageFactory("t"))
    result = client.send(message, cid)
    assert result.verdict == "unacknowledged" and not result.accepted


def test_a_late_ack_is_never_taken_for_the_next_message(peer: MllpPeer) -> None:
    """Each answer starts with a stale ACK for the message before (as an engine that matched
    by order would produce): every message still gets its own ACK, by MSA-2."""
    peer.behaviour = Behaviour(stale_first=True)
    f = MessageFactory("t")
    client = MllpClient("127.0.0.1", peer.port, timeout_s=2)
    for _ in range(5):
        message, cid = _oru(f)
        result = client.send(message, cid)
        assert result.acknowledged_id == cid and result.accepted
    client.close()


def test_a_slow_ack_after_the_timeout_is_not_counted(peer: MllpPeer) -> None:
    peer.behaviour = Behaviour(delay_s=0.5)
    f = MessageFactory("t")
    client = MllpClient("127.0.0.1", peer.port, timeout_s=0.2)
    first, first_id = _oru(f)
    assert client.send(first, first_id).verdict == "unacknowledged"
    peer.behaviour = Behaviour()
    second, second_id = _oru(f)
    result = client.send(second, second_id)  # a new connection: the old one is not trusted
    assert result.acknowledged_id == second_id and result.accepted
    client.close()


def test_acks_split_across_reads(peer: MllpPeer) -> None:
    peer.behaviour = Behaviour(chunk=7)
    client = MllpClient("127.0.0.1", peer.port, timeout_s=2)
    message, cid = _oru(MessageFactory("t"))
    assert client.send(message, cid).accepted
    client.close()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_frames_survive_any_chunking(cuts: list[int]) -> None:
    f = MessageFactory("c")
    messages = [_oru(f)[0] for _ in range(3)]
    stream = b"noise" + b"".join(frame(m) for m in messages)
    decoder, out, i = FrameDecoder(), [], 0
    for n in cuts * 50:
        if i >= len(stream):
            break
        out += decoder.feed(stream[i : i + n])
        i += n
    out += decoder.feed(stream[i:])
    assert [o.decode() for o in out] == messages
    assert decoder.stray_bytes == len(b"noise")


def test_judge_ack_refuses_garbage() -> None:
    assert judge_ack(b"not hl7", "x").verdict == "unreadable"
    message, cid = _oru(MessageFactory("t"))
    ack = make_ack(message, "ZZ", sender=("E", "W"), ack_id="1")
    assert judge_ack(ack, cid).verdict == "unreadable"


def test_mllp_probe(peer: MllpPeer) -> None:
    spec = ProbeSpec.model_validate(
        {"name": "engine", "mllp": {"host": "127.0.0.1", "port": peer.port}, "timeout": "1s"}
    )
    assert Probe(spec).check().ok
    peer.behaviour = Behaviour(code="AR")
    sample = Probe(spec).check()
    assert not sample.ok and "rejected" in (sample.error or "")
    peer.stop()
    assert not Probe(spec).check().ok  # nobody listening
