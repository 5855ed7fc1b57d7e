"""Formats every layer shares, so no layer imports another to agree on them.

`formats.names` is how a file name (any bytes but `/` and NUL) is written outside the
filesystem and read back; `formats.lineframes` the frames of the temp output a SQL sink
loads (processors write it, sinks read it). This package imports nothing of folderd's;
anything may import it.
"""
