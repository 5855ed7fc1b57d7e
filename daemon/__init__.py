"""The lifecycle of a file: watch, settle, claim, process in workers, commit, retry, fail.

The four folders under watch_dir ARE the queue (`daemon.states` names them); every move
between them goes through `moves.transition()`, which renames, journals and logs.
`daemon.core.Daemon` runs the main loop, with `claims` and `outcomes` for what happens before
and after an attempt; `daemon.recovery` holds the lock and repairs what a dead run left;
`daemon.pool` runs files through the pipeline in worker processes (`daemon.worker`: the
child side), both speaking `daemon.attempt`, and each file's outcome ends in its
`daemon.summary`; `daemon.journal` keeps the derived SQLite history the dashboard reads,
and `daemon.snapshot` the live picture.
With --shared, the `daemon.shared` package lets several daemons share one watch_dir;
`daemon.oneoff` runs one file outside the queue (`--input`, `--test`, Preview), and
`daemon.control` is what the dashboard may see and do.
"""

from daemon.errors import DaemonError

__all__ = ["DaemonError"]
