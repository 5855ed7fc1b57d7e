"""Sources: folders folderd watches in place and must not move, each new or changed
version of each file processed exactly once.

A source's folder cannot be the queue, so its journal is (`store`): a row per file with
the version last seen and the version processed last. The scanner (`scanner`, a thread)
walks a source and reports only what differs from its rows; the watchers report changes
as they happen; `runtime.Sources` (the loop's thread) settles versions, hands due ones to
the same workers the queue uses, and `finish` records what they produced, then deletes or
archives the file if the source says so. Jobs (`jobs`) are one-off walks with progress.
"""
