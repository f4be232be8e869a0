"""A scripted MLLP receiver on 127.0.0.1 for tests: answers each message with the ACK code a
behaviour gives, on time, late, never, or after a stale ACK for an earlier message. It is a
real TCP server (a thread per connection); it never files anything.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

from resildrill.hl7.ack import control_id_of, make_ack
from resildrill.hl7.mllp import FrameDecoder, frame


@dataclass
class Behaviour:
    code: str = "AA"
    delay_s: float = 0.0
    silent: bool = False
    stale_first: bool = False  # send the previous message's ACK again before this one's
    chunk: int = 0  # write ACKs in chunks of this many bytes (0: at once)


@dataclass
class MllpPeer:
    behaviour: Behaviour = field(default_factory=Behaviour)
    received: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._server.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = FrameDecoder()
        previous: str | None = None
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for raw in decoder.feed(data):
                    message = raw.decode()
                    self.received.append(control_id_of(message))
                    b = self.behaviour
                    if b.silent:
                        continue
                    time.sleep(b.delay_s)
                    out = b""
                    if b.stale_first and previous is not None:
                        out += frame(make_ack(previous, b.code, sender=("EHR", "WARD"), ack_id="S"))
                    out += frame(make_ack(message, b.code, sender=("EHR", "WARD"), ack_id="A"))
                    previous = message
                    try:
                        if b.chunk:
                            for i in range(0, len(out), b.chunk):
                                conn.sendall(out[i : i + b.chunk])
                                time.sleep(0.001)
                        else:
                            conn.sendall(out)
                    except OSError:
                        return

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(timeout=5)
