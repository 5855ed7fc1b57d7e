"""The child side of a worker: everything that runs in a worker process.

`main` is the process (its loop, the pipeline it loads, its memory cap), `run` one file
through the pipeline (`process_file`, which the one-off runs call too), `committer` the
thread that commits finished attempts' results in groups. What goes between a worker
and the pool is `daemon.attempt`; the parent side is `daemon.pool`.
"""

from daemon.worker.run import process_file

__all__ = ["process_file"]
