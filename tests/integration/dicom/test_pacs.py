"""The bundled PACS (Debian's dcmtk dcmqrscp) as a real DICOM archive, the DICOM verifier, and the
drills that kill it.

* The archive listens on loopback only: dcmqrscp binds every interface of its own network
  namespace, which has nothing but loopback; this host sees only the relay on 127.0.0.1.
* It is a real archive: a synthetic image stored with C-STORE is found with C-FIND (pynetdicom),
  and still found after dcmqrscp was SIGKILLed and started again (its folder is the archive).
* ``drills/pacs-killed.yaml`` through the CLI against a free-port copy of the bundled target,
  with an independent prober beside it (a C-ECHO every 10 ms from this test): the time the
  report says radiology could not reach the archive is within 300 ms of what the prober saw.
* The DICOM verifier counts found, lost and stored-unacknowledged images exactly as dcmtk's own
  tools do (``findscu`` for the archive's index, ``getscu`` for the content), image by image: on
  images stored and deleted behind the archive's back here, and after
  ``drills/pacs-killed-mid-upload.yaml`` (a kill -9 of dcmqrscp under the radiology load).
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)
from tests.conftest import ROOT, free_port
from tests.support.tiny import load_report

from resildrill.dicom.echo import echo
from wardehr import stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _wait_echo(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if echo("127.0.0.1", port, called_ae="WARDPACS", timeout_s=1.0).ok:
            return
        time.sleep(0.1)
    raise AssertionError(f"the PACS on {port} did not answer C-ECHO in {timeout_s} s")


@pytest.fixture
def pacs(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    """wardehr.pacs on a free port, its archive in tmp; stopped (and dcmqrscp with it)."""
    port = free_port()
    pidfile = tmp_path / "pacs.pid"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wardehr.pacs", "--listen", f"127.0.0.1:{port}",
         "--storage", str(tmp_path / "pacs"), "--pidfile", str(pidfile)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_echo(port)
        yield port, pidfile, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def _synthetic_ct(patient_id: str) -> Dataset:
    """A tiny CT image of a synthetic patient (8x8 pixels), never real data."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID, ds.PatientName = patient_id, "Testpatient^Synthetic"
    ds.Modality, ds.StudyDate = "CT", "20261208"
    ds.Rows = ds.Columns = 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    ds.PixelData = bytes(128)
    return ds


def _store(port: int, ds: Dataset) -> int:
    ae = AE(ae_title="RESILDRILL")
    ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="WARDPACS")
    assert assoc.is_established
    try:
        return int(assoc.send_c_store(ds).Status)
    finally:
        assoc.release()


def _find_study(port: int, study_uid: str) -> int:
    """How many studies the archive answers for this Study Instance UID (C-FIND)."""
    ae = AE(ae_title="RESILDRILL")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="WARDPACS")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study_uid
    try:
        return sum(
            1
            for status, identifier in assoc.send_c_find(
                query, StudyRootQueryRetrieveInformationModelFind
            )
            if status and status.Status in (0xFF00, 0xFF01) and identifier is not None
        )
    finally:
        assoc.release()


def _listening_on_any(port: int) -> bool:
    """Whether anything in this network namespace listens on 0.0.0.0:port or [::]:port."""
    hex_port = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, lport = local.partition(":")
            if state == "0A" and lport == hex_port and set(address) == {"0"}:
                return True
    return False


def test_the_archive_listens_on_loopback_only_and_keeps_what_it_stored(
    pacs: tuple[int, Path, subprocess.Popen[bytes]],
) -> None:
    port, pidfile, relay = pacs
    assert not _listening_on_any(11112)  # dcmqrscp's own port is not in this namespace
    image = _synthetic_ct("SYN000101")
    assert _store(port, image) == 0x0000
    assert _find_study(port, image.StudyInstanceUID) == 1

    # SIGKILL the archive itself (its pid is in the pidfile): the relay goes with it
    pid = int(pidfile.read_text().split()[0])
    assert Path(f"/proc/{pid}/comm").read_text().strip() == "dcmqrscp"
    import os

    os.kill(pid, signal.SIGKILL)
    relay.wait(timeout=10)
    assert not echo("127.0.0.1", port, called_ae="WARDPACS", timeout_s=0.5).ok

    # started again on the same folder, as the supervisor would: the study is still there
    again = subprocess.Popen(
        [sys.executable, "-m", "wardehr.pacs", "--listen", f"127.0.0.1:{port}",
         "--storage", str(pidfile.parent / "pacs"), "--pidfile", str(pidfile)],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_echo(port)
        assert _find_study(port, image.StudyInstanceUID) == 1
    finally:
        again.send_signal(signal.SIGTERM)
        again.wait(timeout=10)


class EchoProber:
    """A C-ECHO every 10 ms from this test: when the archive stopped and started answering."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EchoProber:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            at = time.time()
            ok = echo("127.0.0.1", self.port, called_ae="WARDPACS", timeout_s=0.5).ok
            self.samples.append((at, ok))

    def down_s(self) -> float:
        """From the first failed echo to the first good one after it."""
        first_bad = next(at for at, ok in self.samples if not ok)
        back = next(at for at, ok in self.samples if ok and at > first_bad)
        return back - first_bad


def _pacs_target(folder: Path) -> Path:
    text = (ROOT / "targets" / "ward-ehr" / "target-pacs.yaml").read_text()
    ports = {p: str(free_port()) for p in sorted(set(re.findall(r"\b185\d\d\b", text)))}
    text = re.sub(r"\b185\d\d\b", lambda m: ports[m.group(0)], text)
    doc = yaml.safe_load(text)
    doc["name"], doc["run_dir"] = "ward-ehr-pacs-test", str(folder / "run")
    path = folder / "target-pacs.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_pacs_killed_drill_matches_an_independent_prober(tmp_path: Path) -> None:
    target = _pacs_target(tmp_path)
    port = int(yaml.safe_load(target.read_text())["stack"]["pacs"]["listen"].rpartition(":")[2])
    original = yaml.safe_load((ROOT / "drills" / "pacs-killed.yaml").read_text())
    drill = tmp_path / "pacs-killed.yaml"
    drill.write_text(yaml.safe_dump({**original, "target": str(target)}, sort_keys=False))
    try:
        stack.up(target)
        with EchoProber(port) as prober:
            result = subprocess.run(
                [sys.executable, "-m", "resildrill", "run", str(drill), "--yes", "--no-history",
                 "--out", str(tmp_path / "reports")],
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
    finally:
        stack.down(target)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    report = load_report(Path(result.stdout.strip().splitlines()[-1]))
    probe = next(p for p in report["probes"] if p["name"] == "pacs-echo")
    seen = prober.down_s()
    # the report counts 100 ms buckets of a 100 ms probe; the prober echoes every ~10 ms
    assert abs(probe["outage_s"] - seen) <= 0.3, (probe, seen)
    assert report["faults"][0]["recovery"]["recovered"]
    assert 1.0 <= seen <= 5.0  # the supervisor's 1 s restart delay, then dcmqrscp's start


def findscu_count(port: int, study_uid: str, sop_uid: str) -> int:
    """Images dcmtk's findscu finds in the archive's index for one SOP Instance UID."""
    result = subprocess.run(
        ["findscu", "-v", "-S", "-aec", "WARDPACS", "-k", "QueryRetrieveLevel=IMAGE",
         "-k", f"StudyInstanceUID={study_uid}", "-k", "SeriesInstanceUID",
         "-k", f"SOPInstanceUID={sop_uid}",
         "127.0.0.1", str(port)],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    # a study-root IMAGE query names the levels above it (the series as a universal key)
    return result.stderr.count(b"(Pending)")


def getscu_digests(port: int, study: str, series: str, sop: str, folder: Path) -> list[str]:
    """What dcmtk's getscu retrieves for one image (C-GET), as sha256(UID + pixel data): the
    same recipe as the modality's digest, computed here from the files getscu wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    subprocess.run(
        ["getscu", "-S", "-aec", "WARDPACS", "-k", "QueryRetrieveLevel=IMAGE",
         "-k", f"StudyInstanceUID={study}", "-k", f"SeriesInstanceUID={series}",
         "-k", f"SOPInstanceUID={sop}", "-od", str(folder), "127.0.0.1", str(port)],
        capture_output=True, timeout=30, check=False,  # a refused retrieve exits non-zero
    )  # fmt: skip
    out = []
    for path in folder.iterdir():
        ds = dcmread(path)
        out.append(
            hashlib.sha256(str(ds.SOPInstanceUID).encode() + bytes(ds.PixelData)).hexdigest()
        )
    return out


def _dcmtk_outcomes(port: int, writes: list[dict[str, Any]], scratch: Path) -> dict[str, int]:
    """found / lost / stored-unacknowledged by dcmtk alone: in the index (findscu) and
    retrievable with the content that was sent (getscu)."""
    out = {"found": 0, "lost": 0, "stored_unacknowledged": 0}
    for w in writes:
        study, series, sop = w["identifier"].split("/")
        there = findscu_count(port, study, sop) > 0 and w["digest"] in getscu_digests(
            port, study, series, sop, scratch
        )
        if w["acknowledged"]:
            out["found" if there else "lost"] += 1
        elif there:
            out["stored_unacknowledged"] += 1
    return out


def _delete_from_archive(archive: Path, sop_uids: set[str]) -> int:
    """Remove the files of these images behind the archive's back (its index still lists them)."""
    gone = 0
    for path in archive.glob("*.dcm"):
        if str(dcmread(path, stop_before_pixels=True).SOPInstanceUID) in sop_uids:
            path.unlink()
            gone += 1
    return gone


def test_the_dicom_verifier_counts_as_dcmtk_does(
    pacs: tuple[int, Path, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """5 images stored and acknowledged, 3 acknowledged and then deleted behind the archive's
    back, 2 stored although their acknowledgement was lost, 1 acknowledged and never sent."""
    from resildrill.dicom.archive import Peer, content_digest, store_study, synthetic_study
    from resildrill.drill.model import DicomLoadSpec
    from resildrill.load.integrity import check_writes

    port, pidfile, _ = pacs
    peer = Peer("127.0.0.1", port, "WARDPACS")
    stored = synthetic_study("SYN000201", 10)
    assert [one.status for one in store_study(peer, stored)] == [0] * 10
    never = synthetic_study("SYN000202", 1)
    deleted = {str(ds.SOPInstanceUID) for ds in stored[5:8]}
    assert _delete_from_archive(pidfile.parent / "pacs" / "archive", deleted) == 3

    def record(ds: Dataset, acknowledged: bool) -> dict[str, Any]:
        ident = f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}"
        return {
            "resource": "DicomImage", "id": str(ds.SOPInstanceUID), "identifier": ident,
            "op": "create", "acknowledged": acknowledged, "digest": content_digest(ds),
        }  # fmt: skip

    writes = [record(ds, True) for ds in stored[:8]] + [record(ds, True) for ds in never]
    writes += [record(ds, False) for ds in stored[8:]]
    spec = DicomLoadSpec(host="127.0.0.1", port=port, called_ae="WARDPACS")
    result = check_writes(writes, base_url="http://127.0.0.1:1", dicom=spec)
    assert (result.writes_acknowledged, result.writes_lost) == (9, 4)
    assert result.writes_stored_unacknowledged == 2 and result.writes_unverifiable == 0
    by_dcmtk = _dcmtk_outcomes(port, writes, tmp_path / "got")
    assert by_dcmtk == {"found": 5, "lost": 4, "stored_unacknowledged": 2}
    # the deleted ones are still in the index: only the content check sees them gone
    assert all(findscu_count(port, *w["identifier"].split("/")[::2]) == 1 for w in writes[5:8])


def test_pacs_killed_under_radiology_load_counted_as_dcmtk_counts(tmp_path: Path) -> None:
    """The drill's verdict on every image the modality sent equals dcmtk's (findscu for the
    index, getscu for the content), image by image: losses here are the archive's."""
    target = _pacs_target(tmp_path)
    port = int(yaml.safe_load(target.read_text())["stack"]["pacs"]["listen"].rpartition(":")[2])
    original = yaml.safe_load((ROOT / "drills" / "pacs-killed-mid-upload.yaml").read_text())
    drill = tmp_path / "pacs-killed-mid-upload.yaml"
    drill.write_text(yaml.safe_dump({**original, "target": str(target)}, sort_keys=False))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "resildrill", *args], capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    try:
        assert cli("target", "up", str(target)).returncode == 0
        result = cli("run", str(drill), "--yes", "--no-history", "--out", str(tmp_path / "r"))
        assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-2000:]
        run_dir = Path(result.stdout.strip().splitlines()[-1])
        report = load_report(run_dir)
        lines = (run_dir / "load" / "writes.jsonl").read_text().splitlines()
        writes = [json.loads(line) for line in lines]
        by_findscu = _dcmtk_outcomes(port, writes, tmp_path / "got")
    finally:
        cli("target", "down", str(target))
        stack.down(target)
    integrity = report["integrity"]
    assert integrity["writes_unverifiable"] == 0
    acknowledged = sum(1 for w in writes if w["acknowledged"])
    assert acknowledged > 20 and integrity["writes_acknowledged"] == acknowledged
    assert integrity["writes_lost"] == by_findscu["lost"], (integrity, by_findscu)
    assert integrity["writes_stored_unacknowledged"] == by_findscu["stored_unacknowledged"]
    assert acknowledged - integrity["writes_lost"] == by_findscu["found"]
    # the kill landed mid-upload: some images of the cut study were never acknowledged
    assert any(not w["acknowledged"] for w in writes)
    gate = next(g for g in report["gates"] if g["name"] == "max_writes_lost")
    assert gate["passed"] == (integrity["writes_lost"] == 0)
    ARTIFACTS = ROOT / "test-artifacts"
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "dicom-kill.json").write_text(
        json.dumps({"acknowledged": acknowledged, **by_findscu, "report": integrity}, indent=1)
    )
