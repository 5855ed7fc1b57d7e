"""Runs outside the queue: one file through the pipeline with nothing moved.

`single` is `main.py --input PATH` (results committed, the input only read); `dryrun` one
file with nothing kept (`--test` and the dashboard's Preview); `testrun` the pipeline tests
declared beside a config, each a dry run checked against its expectations.
"""
