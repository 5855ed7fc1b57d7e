"""Formats every layer shares, so no layer imports another to agree on them.

`formats.names` is how a file name (any bytes but `/` and NUL) is written outside the
filesystem and read back. This package imports nothing of folderd's; anything may import it.
"""
