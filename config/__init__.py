"""Settings and configuration: what folderd is told to do.

`config.settings` declares every setting once (flag, `FOLDERD_*` variable, type, default,
help) and loads them from argv + an environ mapping; `config.pipeline` loads and validates
`pipeline_config.json`, with the single-value rules of `config.values` (which processors'
options use too). Every problem is raised as one `ConfigError` naming the key, the
value, what was expected and a hint. This package imports nothing else of folderd's.
"""

from config.errors import ConfigError

__all__ = ["ConfigError"]
