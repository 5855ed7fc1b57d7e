"""The lifecycle of a file: watch, settle, claim, process in workers, commit, retry, fail.

The four folders under watch_dir ARE the queue (`daemon.states` names them); every move
between them goes through `moves.transition()`, which renames, journals and logs.
`daemon.core.Daemon` runs the main loop, with `claims` and `outcomes` for what happens before
and after an attempt; `daemon.recovery` holds the lock and repairs what a dead run left;
`daemon.worker` runs files through the pipeline in child processes; `daemon.journal` keeps
the derived SQLite history the dashboard reads, and `daemon.snapshot` the live picture.
With --shared, `daemon.shared` (leases: `lease`, refusals: `instances`, names: `names`,
attempts across instances: `attempts`) lets several daemons share one watch_dir.
"""

from daemon.errors import DaemonError

__all__ = ["DaemonError"]
