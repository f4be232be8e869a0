"""DICOM on the drill's side: verification (C-ECHO) against a PACS, with pynetdicom.

Why pynetdicom: the maintained pure-Python DICOM network stack (pydicom's sister project), with
every DIMSE service a radiology workload needs and explicit timeouts on each step; dcmtk's
tools (``echoscu``, ``storescu``) are the bundled PACS's own side and would mean a process per
probe. See docs/dicom.md.
"""
