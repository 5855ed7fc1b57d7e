"""Writes python_basic.log, python_dash.log and python_traceback.log with the real
`logging` module (its default format, the cookbook's, and a log4j-like one with an
exception's traceback): python tests/processors/logcorpus/generate_python.py"""

from __future__ import annotations

import logging
from pathlib import Path

HERE = Path(__file__).parent


def write(name: str, logger: str, fmt: str) -> logging.Logger:
    handler = logging.FileHandler(HERE / name, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(fmt))
    log = logging.getLogger(logger)
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def main() -> None:
    basic = write("python_basic.log", "shop.api", logging.BASIC_FORMAT)  # level:name:message
    cookbook = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
    dash = write("python_dash.log", "shop.billing", cookbook)
    java = write(
        "python_traceback.log",
        "shop.worker",
        "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
    )
    for log in (basic, dash, java):
        log.debug("loading config from /etc/shop/shop.toml")
        log.info("listening on 0.0.0.0:8080")
        log.info("order 42 paid by user 17")
        log.warning("payment provider slow: 2300 ms")
        log.error("order 43 failed: card declined")
        log.critical("database unreachable, giving up after 5 tries")
    try:
        {}["missing"]
    except KeyError:
        java.exception("order 44 failed")
    try:
        try:
            int("x")
        except ValueError as exc:
            raise RuntimeError("could not read the quantity") from exc
    except RuntimeError:
        java.exception("order 45 failed")
    java.info("shutting down")


if __name__ == "__main__":
    main()
