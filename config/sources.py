"""Sources: folders folderd watches in place and must not move, declared in the config's
`sources` list and checked here into typed `SourceConfig`s with located errors.

A source has a name (it names its results folder, its rows' and its files' identity), a
path, include and exclude globs, whether it is walked recursively, its own `routes` and
`deliver` (or the pipeline's), what happens to a file once its results and deliveries are
committed (`after`: keep, delete or move to an `archive` folder), and whether a version
includes the content's hash (`hash`: for filesystems whose metadata cannot be trusted).
Routes and sinks are parsed by `config.pipeline_parser`, which hands them in here.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from config import values
from config.errors import ConfigError
from formats.names import shown

if TYPE_CHECKING:
    from config.pipeline import RouteConfig
    from config.sinks import S3SinkConfig

SOURCE_KEYS = ("name", "path", "include", "exclude", "recursive", "routes", "deliver", "after",
               "archive", "hash", "results", "watch", "rescan_s")  # fmt: skip
After = Literal["keep", "delete", "move"]  # what happens to a file once committed
Watch = Literal["auto", "inotify", "poll"]
AFTER: tuple[After, ...] = get_args(After)
WATCH: tuple[Watch, ...] = get_args(Watch)
RESULTS_ROOT = "sources"  # a source's results default to results/sources/<name>/
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class SourceConfig:
    """One folder watched in place. `routes` / `deliver` None: the pipeline's."""

    name: str
    path: Path
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    recursive: bool = True
    routes: tuple[RouteConfig, ...] | None = None
    deliver: tuple[S3SinkConfig, ...] | None = None
    after: After = "keep"
    archive: Path | None = None  # after: move
    hash: bool = False  # a version is its metadata and its content's sha256
    results: str = ""  # under results/; "" is sources/<name>
    watch: Watch = "auto"  # inotify, or poll (NFS/SMB/FUSE: found by `auto`)
    rescan_s: float = 60.0  # a full comparison with the journal this often
    adhoc: bool = False  # made by a job (`POST /api/sources`), not declared: never watched

    @property
    def results_prefix(self) -> str:
        return self.results or f"{RESULTS_ROOT}/{self.name}"

    def wants(self, rel: str) -> bool:
        """Whether the file `rel` (relative to the source) belongs to it: an include glob
        matches and no exclude does (a glob with a `/` matches the whole relative path,
        one without the name), and it is at the top unless the source is recursive."""
        if not self.recursive and "/" in rel:
            return False
        name = rel.rpartition("/")[2]

        def match(glob: str) -> bool:
            return fnmatch.fnmatchcase(rel if "/" in glob else name, glob)

        return any(map(match, self.include)) and not any(map(match, self.exclude))

    def describe(self) -> str:
        """One line for --check-config's outline."""
        globs = ", ".join(self.include) + (f" minus {', '.join(self.exclude)}" if self.exclude
                                           else "")  # fmt: skip
        top = "" if self.recursive else ", top only"
        parts = [f"{self.name}: {shown(str(self.path))} ({globs}{top})"]
        parts.append(f"results {self.results_prefix}/")
        if self.routes is not None:
            parts.append(f"{len(self.routes)} route(s) of its own")
        if self.deliver is not None:
            parts.append("deliver " + (", ".join(s.describe("<file>") for s in self.deliver)
                                       or "nothing"))  # fmt: skip
        if self.after != "keep":
            parts.append("then " + (f"moved to {shown(str(self.archive))}" if self.after == "move"
                                    else "deleted"))  # fmt: skip
        if self.hash:
            parts.append("versions hashed")
        if self.watch != "auto":
            parts.append(f"watched by {self.watch}")
        return "; ".join(parts)


def source_name(raw: str) -> str:
    """A name usable as one folder name and a label: ValueError if not."""
    if not _NAME.fullmatch(raw):
        raise ValueError("expected 1-64 letters, digits, '.', '_' or '-', starting with a "
                         "letter or digit")  # fmt: skip
    return raw


Routes = Callable[[list[Any], str], "tuple[RouteConfig, ...]"]
Deliver = Callable[[list[Any], str], "tuple[S3SinkConfig, ...]"]


def parse_sources(
    items: Any, routes: Routes, deliver: Deliver, environ: Mapping[str, str]
) -> tuple[tuple[SourceConfig, ...], list[ConfigError]]:
    """The `sources` list; `routes(items, path)` and `deliver(items, path)` parse a
    source's own routes and deliver lists (config.pipeline_parser's rules); `${VAR}` in a path
    or an archive folder is expanded from `environ`."""
    errors: list[ConfigError] = []
    if not isinstance(items, list):
        return (), [ConfigError("$.sources", f"expected a list, got {values.kind(items)}")]
    out: list[SourceConfig] = []
    names: dict[str, str] = {}
    for i, item in enumerate(items):
        path = f"$.sources[{i}]"
        try:
            source = _source(item, path, routes, deliver, environ)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if source.name in names:
            errors.append(ConfigError(f"{path}.name", f"duplicate source name {source.name!r}",
                                      f"also at {names[source.name]}"))  # fmt: skip
            continue
        names[source.name] = path
        out.append(source)
    return tuple(out), errors


def _folder(key: str, value: Any, environ: Mapping[str, str]) -> Path:
    return Path(values.expand_env(key, values.string(key, value, empty=False), environ))


def _source(
    item: Any, path: str, routes: Routes, deliver: Deliver, environ: Mapping[str, str]
) -> SourceConfig:
    if not isinstance(item, dict):
        raise ConfigError(path, f"expected an object, got {values.kind(item)}")
    unknown = [k for k in item if k not in SOURCE_KEYS]
    if unknown:
        allowed = ", ".join(SOURCE_KEYS)
        raise ConfigError(f"{path}.{unknown[0]}", "unknown key", f"allowed: {allowed}")
    for key in ("name", "path"):
        if key not in item:
            raise ConfigError(f"{path}.{key}", "missing")
    name = values.string(f"{path}.name", item["name"], empty=False)
    try:
        source_name(name)
    except ValueError as exc:
        raise ConfigError(f"{path}.name", f"{exc}, got {name!r}") from None
    folder = _folder(f"{path}.path", item["path"], environ)
    after = values.choice(f"{path}.after", item.get("after", SourceConfig.after), AFTER)
    archive = None
    if "archive" in item:
        archive = _folder(f"{path}.archive", item["archive"], environ)
    if (after == "move") != (archive is not None):
        raise ConfigError(f"{path}.archive", 'an archive folder goes with "after": "move" '
                          "(and only with it)")  # fmt: skip
    results = values.string(f"{path}.results", item.get("results", SourceConfig.results))
    if results and (results.startswith("/") or any(p in ("", ".", "..") or p.startswith(".")
                                                   for p in results.split("/"))):  # fmt: skip
        raise ConfigError(f"{path}.results", f"expected a relative folder under results/, "
                          f"got {results!r}", "no empty, '.', '..' or hidden parts")  # fmt: skip
    return SourceConfig(
        name=name,
        path=folder,
        include=_globs(item, "include", path, SourceConfig.include),
        exclude=_globs(item, "exclude", path, SourceConfig.exclude),
        recursive=values.boolean(
            f"{path}.recursive", item.get("recursive", SourceConfig.recursive)
        ),
        routes=routes(item["routes"], f"{path}.routes") if "routes" in item else None,
        deliver=deliver(item["deliver"], f"{path}.deliver") if "deliver" in item else None,
        after=after,
        archive=archive,
        hash=values.boolean(f"{path}.hash", item.get("hash", SourceConfig.hash)),
        results=results,
        watch=values.choice(f"{path}.watch", item.get("watch", SourceConfig.watch), WATCH),
        rescan_s=values.number(
            f"{path}.rescan_s", item.get("rescan_s", SourceConfig.rescan_s), 0.1
        ),
    )


def _globs(item: dict[str, Any], key: str, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """`include` / `exclude`: one glob or a non-empty list; `default` when left out."""
    return tuple(values.strings(f"{path}.{key}", item[key])) if key in item else default
