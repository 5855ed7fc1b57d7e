"""Example processor plugins (see README.md, "Writing a processor")."""
