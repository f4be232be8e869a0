"""The bundled PACS: Debian's dcmtk ``dcmqrscp``, a real DICOM archive, reachable on loopback only.

``dcmqrscp`` (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET; storage and its ``index.dat`` in one
folder) has no option to choose its listen address: it binds every interface of its network
namespace. This repository's rule is that everything it starts binds 127.0.0.0/8, so the
archive runs in a network namespace of its own (``unshare --net``: only a loopback device, no
route out or in) and a relay carries connections to it::

    client -> 127.0.0.1:LISTEN (this host)          [outer relay, this process]
           -> PACS_FOLDER/dicom.sock (a unix socket: the filesystem is shared)
           -> 127.0.0.1:11112 inside the namespace  [inner relay]
           -> dcmqrscp

Processes: ``python -m wardehr.pacs --listen H:P --storage DIR --pidfile F`` (the outer relay)
starts ``unshare --net [--map-root-user] python -m wardehr.pacs --inside ...`` (brings its
loopback up, runs the inner relay, starts ``dcmqrscp`` and writes **its** pid to the pidfile,
so a drill's kill hits the archive itself). When ``dcmqrscp`` dies the inside part exits, and
then the outer one: the stack's supervisor restarts the service, as for any process of the
ward EHR. What ``dcmqrscp`` stores survives restarts (its folder is the archive).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from wardehr._proc import parse_address, remove_pidfile, setup_logging, write_pidfile

__all__ = ["INSIDE_PORT", "main", "write_config"]

log = logging.getLogger("pacs")
#: The archive's port inside its own namespace (never reachable from outside it).
INSIDE_PORT = 11112
_CHUNK = 65536


def write_config(folder: Path, ae_title: str) -> Path:
    """dcmqrscp's configuration: one AE title, its storage in ``folder/archive``, any peer."""
    archive = folder / "archive"
    archive.mkdir(parents=True, exist_ok=True)
    path = folder / "dcmqrscp.cfg"
    path.write_text(
        f"NetworkTCPPort = {INSIDE_PORT}\n"
        "MaxPDUSize = 16384\n"
        "MaxAssociations = 32\n"
        "HostTable BEGIN\nHostTable END\n"
        "VendorTable BEGIN\nVendorTable END\n"
        "AETable BEGIN\n"
        # AE title, storage area, access, quota (studies, bytes per study), peers
        f"{ae_title} {archive} RW (1000, 64mb) ANY\n"
        "AETable END\n"
    )
    return path


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


async def _join(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connect: object
) -> None:
    """Carry one connection to the other side; close both when either ends."""
    try:
        up_reader, up_writer = await connect  # type: ignore[misc]
    except OSError as exc:
        log.warning("relay: cannot reach the archive: %s", exc)
        writer.close()
        return
    await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))


async def _outer(listen: str, sock: Path, inside: subprocess.Popen[bytes]) -> int:
    host, port = parse_address(listen)

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await _join(r, w, asyncio.open_unix_connection(str(sock)))

    server = await asyncio.start_server(serve, host, port, reuse_address=True)
    log.info("relaying %s -> %s", listen, sock)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, inside.wait)
    server.close()
    log.warning("the archive's namespace ended (exit %s)", code)
    return 1


#: After dcmqrscp's listener died, how long associations its forked children still serve may go
#: on (as on a host without the relay: a killed parent leaves its children running).
DRAIN_S = 30.0


async def _inner(sock: Path, archive: subprocess.Popen[bytes]) -> int:
    open_links: set[asyncio.Task[None]] = set()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        open_links.add(task)
        try:
            await _join(r, w, asyncio.open_connection("127.0.0.1", INSIDE_PORT))
        finally:
            open_links.discard(task)

    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    server = await asyncio.start_unix_server(serve, str(sock))
    os.chmod(sock, 0o600)
    loop = asyncio.get_running_loop()
    code = await loop.run_in_executor(None, archive.wait)
    server.close()  # no new association: the archive is down
    log.warning("dcmqrscp exited (%s); %d association(s) still open", code, len(open_links))
    # dcmqrscp forks a child per association: a kill of the listener leaves them to finish, so
    # their connections are carried until they end, not cut here
    if open_links:
        await asyncio.wait(set(open_links), timeout=DRAIN_S)
    return 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _inside(args: argparse.Namespace) -> int:
    """In the new namespace: loopback up, dcmqrscp started, its pid recorded, relay run."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    log_file = open(args.archive_log, "ab")  # noqa: SIM115 - the archive's own log, for life
    archive = subprocess.Popen(
        [args.dcmqrscp, "-c", str(args.config), str(INSIDE_PORT)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=str(Path(args.config).parent),
        preexec_fn=_die_with_parent,
    )
    write_pidfile(args.pidfile, archive.pid)

    def stop(signum: int, _frame: object) -> None:
        archive.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        return asyncio.run(_inner(Path(args.sock), archive))
    finally:
        remove_pidfile(args.pidfile, archive.pid)


def _outside(args: argparse.Namespace) -> int:
    folder = Path(args.storage)
    folder.mkdir(parents=True, exist_ok=True)
    dcmqrscp = shutil.which("dcmqrscp")
    if dcmqrscp is None:
        log.error("dcmqrscp not found: install Debian's dcmtk (scripts/install-system-deps.sh)")
        return 2
    config = write_config(folder, args.ae_title)
    sock = folder / "dicom.sock"
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    inside = subprocess.Popen(
        [
            *unshare, sys.executable, "-m", "wardehr.pacs", "--inside",
            "--config", str(config), "--sock", str(sock), "--pidfile", str(args.pidfile),
            "--dcmqrscp", dcmqrscp, "--archive-log", str(folder / "dcmqrscp.log"),
        ],
        preexec_fn=_die_with_parent,  # a relay killed by anyone takes the archive with it
    )  # fmt: skip

    def stop(signum: int, _frame: object) -> None:
        inside.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        return asyncio.run(_outer(args.listen, sock, inside))
    finally:
        if inside.poll() is None:
            inside.terminate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wardehr.pacs", description=__doc__)
    parser.add_argument("--listen", help="host:port on this host (loopback)")
    parser.add_argument("--storage", help="the archive's folder (config, images, index)")
    parser.add_argument("--ae-title", default="WARDPACS")
    parser.add_argument("--pidfile", required=True, help="gets dcmqrscp's pid")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--sock", help=argparse.SUPPRESS)
    parser.add_argument("--dcmqrscp", help=argparse.SUPPRESS)
    parser.add_argument("--archive-log", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging("pacs")
    if args.inside:
        return _inside(args)
    if not args.listen or not args.storage:
        parser.error("--listen and --storage are required")
    return _outside(args)


if __name__ == "__main__":
    sys.exit(main())
