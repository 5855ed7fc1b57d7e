"""The pipeline engine, the built-in processors, and the API user plugins implement.

The daemon uses exactly three names from here, inside its worker processes:
`load_pipeline(raw_config, trace=...)` builds a runnable `Pipeline` from the parsed
`pipeline_config.json` (raising `config.ConfigError` when it is invalid), and
`Pipeline.run_file(stream, rel_path, open_output)` streams one file through it and returns
the pipeline's part of the file's summary; a file that can never succeed raises
`ProcessorError`. Anything else raised (OSError above all) the daemon treats as transient.
"""

from processors.base import ProcessorError
from processors.engine import Pipeline, load_pipeline

__all__ = ["Pipeline", "ProcessorError", "load_pipeline"]
