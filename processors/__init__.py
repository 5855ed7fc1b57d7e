"""The pipeline engine, the built-in processors, and the API user plugins implement.

The daemon uses these names, inside its worker processes and at start-up:
`load_pipeline(raw_config, trace=...)` builds a runnable `Pipeline` from the parsed
`pipeline_config.json` (raising `config.ConfigError` when it is invalid), and
`Pipeline.run_file(stream, rel_path, open_output)` streams one file through it and returns
the pipeline's part of the file's summary; a file that can never succeed raises
`ProcessorError`. Anything else raised (OSError above all) the daemon treats as transient.
`validate_file(path)` reads and fully checks a config file (start-up, SIGHUP);
`check_file(path)` lists every problem and outlines the graph (`--check-config`).
"""

from processors.base import Context, Processor, ProcessorError
from processors.checker import check_file, load_pipeline, validate_file
from processors.engine import Pipeline

__all__ = [
    "Context",
    "Pipeline",
    "Processor",
    "ProcessorError",
    "check_file",
    "load_pipeline",
    "validate_file",
]
