"""Settings and configuration: what folderd is told to do.

The settings: `config.settings` declares each one once, as a typed field of `Settings`
(its flag, `FOLDERD_*` variable, cast, default and help); `config.casts` turns raw text into
typed values, `config.cli` makes the flags, `config.loading` loads argv + an environ
mapping into `Settings`, and `config.reference` writes the manual's table from them.
The pipeline: `config.pipeline` is what `pipeline_config.json` means, as typed objects;
`config.pipeline_parser` (with `config.checker` and `config.reader_parser`) loads and
validates it, with the single-value rules of `config.values` (which processors' options use
too). Every problem is raised as one `ConfigError` naming the key, the value, what was
expected and a hint. This package imports nothing of folderd's but `formats`.
"""

from config.errors import ConfigError

__all__ = ["ConfigError"]
