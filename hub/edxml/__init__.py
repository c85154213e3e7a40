"""edXML (QCVN 102:2016) packages: the typed model, the reader, the writer and the schemas.

Everything here is pure: bytes and trees in, objects out, no I/O.
"""
