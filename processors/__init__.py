"""The pipeline engine, the built-in processors, and the API user plugins implement.

The daemon uses these names. `load_file(path)` reads and checks `pipeline_config.json`
once (at start-up and on every reload), raising `config.ConfigError` when it is invalid,
into a `LoadedPipeline`: the one checked config the worker pool and the dashboard share.
Each worker process gets it pickled and calls `LoadedPipeline.build(trace=...)` for a
runnable `Pipeline`; `Pipeline.run_file(stream, rel_path, open_output)` streams one file
through it and returns the pipeline's part of the file's summary; a file that can never
succeed raises `ProcessorError`. Anything else raised (OSError above all) the daemon
treats as transient. `check_file(path)` lists every problem and outlines the graph
(`--check-config`).
"""

from processors.base import Context, Processor, ProcessorError
from processors.engine import Pipeline
from processors.loader import LoadedPipeline, check_file, load_file

__all__ = [
    "Context",
    "LoadedPipeline",
    "Pipeline",
    "Processor",
    "ProcessorError",
    "check_file",
    "load_file",
]
