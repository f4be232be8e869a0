"""MLLP framing and a blocking MLLP client with deadlines: one message out, its ACK back.

MLLP (HL7 v2 "Minimal Lower Layer Protocol") frames each message as ``0x0B <message>
0x1C 0x0D`` on a TCP stream. :class:`FrameDecoder` turns any chunking of the stream back into
whole frames (a frame split across reads, several frames in one read, bytes outside a frame
are counted and dropped). :class:`MllpClient` sends a message and waits for *its* ACK: an
answer is matched to the message by MSA-2 (the acknowledged control id), never by order, so a
late ACK for an earlier message that arrives now is set aside, not taken as this one's.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from resildrill.hl7.ack import AckResult, judge_ack

START, END, CR = b"\x0b", b"\x1c", b"\x0d"


def frame(message: str | bytes) -> bytes:
    """One MLLP frame around an HL7 message (segments separated by CR)."""
    data = message.encode() if isinstance(message, str) else message
    return START + data + END + CR


@dataclass
class FrameDecoder:
    """Whole frames from a byte stream, however it was chunked."""

    buffer: bytearray = field(default_factory=bytearray)
    stray_bytes: int = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while True:
            start = self.buffer.find(START)
            if start < 0:
                self.stray_bytes += len(self.buffer)
                self.buffer.clear()
                return frames
            if start > 0:
                self.stray_bytes += start
                del self.buffer[:start]
            end = self.buffer.find(END + CR, 1)
            if end < 0:
                return frames
            frames.append(bytes(self.buffer[1:end]))
            del self.buffer[: end + 2]


class MllpError(OSError):
    """The peer could not be reached, closed the connection, or said nothing in time."""


class MllpClient:
    """A persistent MLLP connection to one peer (reconnects on the next send after a loss)."""

    def __init__(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self._sock: socket.socket | None = None
        self._decoder = FrameDecoder()
        #: ACKs that arrived for other messages (late ones), by acknowledged control id
        self.unmatched: dict[str, bytes] = {}

    def _connect(self, deadline: float) -> socket.socket:
        if self._sock is None:
            left = max(0.001, deadline - time.monotonic())
            try:
                self._sock = socket.create_connection((self.host, self.port), left)
            except OSError as exc:
                raise MllpError(f"mllp {self.host}:{self.port}: {exc.strerror or exc}") from None
            self._decoder = FrameDecoder()
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def send(self, message: str, control_id: str, *, timeout_s: float | None = None) -> AckResult:
        """Send ``message`` (whose MSH-10 is ``control_id``) and wait for its ACK.

        No ACK for this control id within the timeout is ``unacknowledged`` (the connection
        is dropped: a late ACK on it could not be trusted to mean anything). Never raises for
        the peer's answer; raises :class:`MllpError` only if the message could not be sent.
        """
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        sock = self._connect(deadline)
        try:
            sock.sendall(frame(message))
        except OSError as exc:
            self.close()
            raise MllpError(f"mllp {self.host}:{self.port}: send failed: {exc}") from None
        while True:
            early = self.unmatched.pop(control_id, None)
            if early is not None:
                return judge_ack(early, control_id)
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                return AckResult.unacknowledged(control_id, "no ACK within the timeout")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                self.close()
                return AckResult.unacknowledged(control_id, f"connection lost: {exc}")
            if not data:
                self.close()
                return AckResult.unacknowledged(control_id, "peer closed the connection")
            for raw in self._decoder.feed(data):
                result = judge_ack(raw, control_id)
                if result.acknowledged_id == control_id:
                    return result
                if result.acknowledged_id:
                    self.unmatched[result.acknowledged_id] = raw  # someone else's, late
