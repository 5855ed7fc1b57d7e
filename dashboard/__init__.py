"""The dashboard that lives inside the daemon: a Starlette app served by uvicorn on a
background thread of the daemon process. It shows what the daemon is doing (overview, files,
one file's story, the pipeline graph, errors), lets people upload, requeue and cancel files,
and answers `/health`, `/metrics` and a JSON API under `/api/`. It only sees the daemon
through `daemon.control.DaemonAPI` (a status snapshot, the event bus, a read-only journal
connection and three actions) and never moves a file itself.
"""
