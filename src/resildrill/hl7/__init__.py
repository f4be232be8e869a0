"""HL7 v2 over MLLP on the drill's side: framing, acknowledgements, messages to send.

    mllp.py      framing (0x0B ... 0x1C 0x0D), a frame decoder, a client with deadlines that
                 matches each ACK to its message by MSA-2, never by order
    ack.py       what AA/AE/AR (original mode) and CA/CE/CR (enhanced mode) mean
    messages.py  ADT A01/A02/A03/A08 and ORU^R01 for synthetic patients, unique control ids

Used by the ``mllp`` probe (observe/probes.py).
"""
