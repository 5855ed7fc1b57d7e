"""Example processor plugins (see docs/pipeline.md, "Writing a processor")."""
