"""One module per studio tab: each builds its tab's components and wires its events (`demo/studio.py` assembles)."""
