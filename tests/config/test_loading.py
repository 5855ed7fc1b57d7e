"""Loading settings: what a user gets from flags and FOLDERD_* variables, and what they are
told when a value or a variable is wrong."""

from __future__ import annotations

import dataclasses
import pickle
import types
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import pytest

from config import ConfigError
from config.loading import defaults, load
from config.settings import BY_NAME, SETTINGS, Setting, Settings

# For every setting: a raw value a user might give, and the typed value folderd must
# read from it, whether it came as the flag or as the variable. Each differs from the
# default, so it proves the value came through. Switches take no value on the command
# line; their raw value is for the variable.
SAMPLES: dict[str, tuple[str, Any]] = {
    "config": ("other.json", Path("other.json")),
    "watch_dir": ("/srv/queue", Path("/srv/queue")),
    "results_dir": ("/srv/results", Path("/srv/results")),
    "host": ("::1", "::1"),
    "port": ("9000", 9000),
    "no_dashboard": ("yes", True),
    "workers": ("7", 7),
    "poll": ("on", True),
    "no_fsync": ("true", True),
    "debug": ("1", True),
    "trace": ("YES", True),
    "log_format": ("json", "json"),
    "settle": ("2", 2.0),
    "settle_renames": ("on", True),
    "skip_duplicates": ("yes", True),
    "rescan_interval": ("5", 5.0),
    "poll_interval": ("0.25", 0.25),
    "max_attempts": ("5", 5),
    "retry_backoff": ("0", 0.0),
    "shutdown_timeout": ("10", 10.0),
    "stall_timeout": ("30", 30.0),
    "stall_kill_after": ("0", 0.0),
    "worker_memory_mb": ("2048", 2048),
    "ignore_patterns": (" *.a, *.b,,", ("*.a", "*.b")),
    "zero_mtime": ("accept", "accept"),
    "empty_files": ("process", "process"),
    "max_upload_mb": ("5", 5),
    "min_disk_free_mb": ("1", 1),
    "allowed_hosts": ("Dash.Example., ::1 ,*", ("dash.example", "[::1]", "*")),
    "trusted_proxies": (
        " 10.0.0.7, 192.168.1.9/24,::1",
        ("10.0.0.7/32", "192.168.1.0/24", "::1/128"),
    ),
    "allow_no_token": ("yes", True),
    "max_connections": ("64", 64),
    "http_timeout": ("2.5", 2.5),
    "preview_timeout": ("3", 3.0),
    "preview_max_mb": ("2", 2),
    "shared": ("on", True),
    "instance": ("node-2.a_b", "node-2.a_b"),
    "state_dir": ("/var/lib/folderd", Path("/var/lib/folderd")),
    "lease": ("12.5", 12.5),
    "source_roots": ("/srv/drop, /home", (Path("/srv/drop"), Path("/home"))),
    "token": ("s3cret", "s3cret"),
}


def test_defaults_match_the_design() -> None:
    s = defaults()
    assert s.mode == "watch" and s.input is None
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.watch_dir == Path("watch_dir") and s.results_dir == Path("results")
    assert s.settle == 0.5 and s.rescan_interval == 30.0 and s.max_attempts == 3
    assert "*.part" in s.ignore_patterns and s.no_fsync is False and s.token is None


def test_every_setting_has_a_sample_here() -> None:
    assert SAMPLES.keys() == BY_NAME.keys(), "add the new setting to SAMPLES"


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_a_flag_and_its_variable_give_the_same_typed_value(setting: Setting) -> None:
    raw, expected = SAMPLES[setting.name]
    assert expected != setting.default
    from_env = getattr(load([], {setting.env: raw}), setting.name)
    assert from_env == expected and type(from_env) is type(expected)
    if setting.secret:
        with pytest.raises(SystemExit):  # never on a command line
            load([setting.flag, raw], {})
        return
    argv = [setting.flag] if setting.switch else [setting.flag, raw]
    from_flag = getattr(load(argv, {}), setting.name)
    assert from_flag == expected and type(from_flag) is type(expected)


def test_flag_beats_variable_beats_default() -> None:
    assert load([], {"FOLDERD_WORKERS": "3"}).workers == 3
    assert load(["--workers", "5"], {"FOLDERD_WORKERS": "3"}).workers == 5
    assert load(["--poll"], {"FOLDERD_POLL": "0"}).poll is True
    assert load([], {"FOLDERD_POLL": "off"}).poll is False


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--workers", "0"], {}, "--workers: expected a whole number >= 1, got '0'"),
        (["--workers", "two"], {}, "--workers: expected a whole number >= 1, got 'two'"),
        (["--settle", "soon"], {}, "--settle: expected a number of seconds >= 0, got 'soon'"),
        (["--settle", "nan"], {}, "--settle: expected a number of seconds >= 0, got 'nan'"),
        ([], {"FOLDERD_PORT": "http"}, "FOLDERD_PORT: expected a port number from 0 to 65535"),
        ([], {"FOLDERD_PORT": "70000"}, "FOLDERD_PORT: expected a port number from 0 to 65535"),
        ([], {"FOLDERD_POLL": "maybe"}, "FOLDERD_POLL: expected a boolean (1/0, true/false"),
        ([], {"FOLDERD_ZERO_MTIME": "maybe"}, "FOLDERD_ZERO_MTIME: expected one of fail, accept"),
        (["--allowed-hosts", "x:8000"], {}, "--allowed-hosts: expected host names without scheme"),
        (["--allowed-hosts", "http://x"], {}, "--allowed-hosts: expected host names without"),
        ([], {"FOLDERD_ALLOWED_HOSTS": " , "}, "FOLDERD_ALLOWED_HOSTS: expected at least one"),
    ],
)
def test_a_bad_value_names_its_source_and_the_expected_form(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(argv, env)
    assert str(err.value).startswith(message)
    assert err.value.key == message.partition(":")[0]


@pytest.mark.parametrize(
    ("variable", "hint"),
    [
        ("FOLDERD_WORKER", "did you mean FOLDERD_WORKERS?"),
        ("FOLDERD_watch_dir", "did you mean FOLDERD_WATCH_DIR?"),
        ("FOLDERD_TOKN", "did you mean FOLDERD_TOKEN?"),
        ("FOLDERD_NOPE", "`python main.py --help` lists every FOLDERD_* variable"),
    ],
)
def test_an_unknown_variable_is_refused_with_a_hint(variable: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load([], {variable: "hidden-value", "FOLDERD_WORKERS": "2"})
    assert (err.value.key, err.value.message, err.value.hint) == (
        variable,
        "unknown setting",
        hint,
    )
    assert "hidden-value" not in str(err.value), "a misspelt FOLDERD_TOKEN holds a secret"


def test_every_unknown_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load([], {"FOLDERD_B": "1", "FOLDERD_A": "1", "FOLDERD_C": "1"})
    assert err.value.key == "FOLDERD_A"
    assert err.value.message == "unknown setting; also unknown: FOLDERD_B, FOLDERD_C"


def test_other_variables_are_none_of_folderds_business() -> None:
    env = {"PATH": "/bin", "TEST_REQUIRE_BROWSER": "1", "FOLDERD": "x", "folderd_workers": "x"}
    assert load([], env) == defaults()


def _fits(hint: Any, value: object) -> bool:
    """Whether `value` is of the type `hint` (the forms Settings uses), a bool no number."""
    if isinstance(hint, types.UnionType):
        return any(_fits(arg, value) for arg in get_args(hint))
    if get_origin(hint) is Literal:
        return isinstance(value, str) and value in get_args(hint)
    if get_origin(hint) is tuple:  # tuple[X, ...]
        return isinstance(value, tuple) and all(_fits(get_args(hint)[0], v) for v in value)
    if isinstance(value, bool) and hint is not bool:
        return False
    return isinstance(value, hint)


def test_settings_are_frozen_typed_and_picklable() -> None:
    s = load([], {setting.env: SAMPLES[setting.name][0] for setting in SETTINGS})
    hints = get_type_hints(Settings)
    for f in dataclasses.fields(Settings):
        assert _fits(hints[f.name], getattr(s, f.name)), f.name
        assert _fits(hints[f.name], getattr(defaults(), f.name)), f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.workers = 2  # type: ignore[misc]
    assert dataclasses.replace(s, workers=2).workers == 2 and s.workers == 7
    assert pickle.loads(pickle.dumps(s)) == s  # worker processes receive it pickled
    assert "s3cret" not in repr(s), "the token stays out of reprs, and so out of logs"


def test_modes_are_exclusive() -> None:
    assert load(["--drain"], {}).mode == "drain"
    s = load(["--input", "x.log"], {})
    assert (s.mode, s.input) == ("input", Path("x.log"))
    with pytest.raises(SystemExit):
        load(["--drain", "--input", "x"], {})


@pytest.mark.parametrize(
    ("argv", "env", "key"),
    [
        (["--host", "0.0.0.0"], {}, "--host"),
        (["--host", "::"], {}, "--host"),
        (["--host", "192.0.2.10"], {}, "--host"),
        (["--host", "dash.example"], {}, "--host"),  # a name is not resolved: it may change
        ([], {"FOLDERD_HOST": ""}, "FOLDERD_HOST"),  # every address
    ],
)
def test_a_dashboard_off_loopback_without_a_token_is_refused(
    argv: list[str], env: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(argv, env)
    assert caught.value.key == key
    assert "without FOLDERD_TOKEN" in str(caught.value) and "--allow-no-token" in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--host", "0.0.0.0"], {"FOLDERD_TOKEN": "s3cret"}),
        (["--host", "0.0.0.0", "--allow-no-token"], {}),
        (["--host", "0.0.0.0"], {"FOLDERD_ALLOW_NO_TOKEN": "yes"}),
        (["--host", "0.0.0.0", "--no-dashboard"], {}),
        (["--host", "0.0.0.0", "--drain"], {}),  # no dashboard in the other modes
        (["--host", "0.0.0.0", "--input", "x.log"], {}),
        (["--host", "127.0.0.5"], {}),
        (["--host", "::1"], {}),
        (["--host", "::ffff:127.0.0.1"], {}),
        (["--host", "LocalHost."], {}),
    ],
)
def test_a_token_an_opt_out_or_loopback_lets_it_serve(argv: list[str], env: dict[str, str]) -> None:
    load(argv, env)


def test_trusted_proxies_must_be_addresses() -> None:
    assert load([], {}).trusted_proxies == ()
    assert load([], {"FOLDERD_TRUSTED_PROXIES": ""}).trusted_proxies == ()
    with pytest.raises(ConfigError, match="--trusted-proxies: expected IP addresses or networks"):
        load(["--trusted-proxies", "10.0.0.1,proxy.lan"], {})
