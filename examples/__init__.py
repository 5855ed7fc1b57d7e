"""Examples for folderd users: plugins a pipeline config can name by dotted path."""
