"""config.checker: a walk that records every problem and goes on with a fallback."""

from __future__ import annotations

from config.checker import Checker


def test_every_problem_is_recorded_and_the_walk_goes_on_with_the_fallback() -> None:
    c = Checker()
    obj = {"n": "x", "m": 99, "r": "(", "t": ["a", "b c"], "extra": 1}
    c.keys(obj, "$.o", ("n", "m", "r", "t"))
    assert c.integer(obj, "n", "$.o", 5, 1, 10) == 5
    assert c.integer(obj, "m", "$.o", 5, 1, 10) == 5
    assert c.integer(obj, "absent", "$.o", 7, 1, 10) == 7
    assert c.regex(obj, "r", "$.o") is None
    assert c.tags(obj, "t", "$.o", ()) == ("a",)
    assert [str(e) for e in c.errors] == [
        "$.o.extra: unknown key (allowed: n, m, r, t)",
        "$.o.n: expected a whole number, got string 'x'",
        "$.o.m: expected a whole number from 1 to 10, got 99",
        "$.o.r: invalid regular expression '(': missing ), unterminated subpattern at position 0",
        "$.o.t[1]: expected a tag name (non-empty, no spaces), got string 'b c'",
    ]


def test_objects_yields_the_objects_and_records_the_rest() -> None:
    c = Checker()
    found = list(c.objects([{"a": 1}, 3, {"b": 2}], "rules"))
    assert found == [("$.rules[0]", {"a": 1}), ("$.rules[2]", {"b": 2})]
    assert [str(e) for e in c.errors] == ["$.rules[1]: expected an object, got number 3"]


def test_nonempty_refuses_an_empty_string() -> None:
    c = Checker()
    assert c.nonempty({"s": ""}, "s", "$", None) is None
    assert c.nonempty({"s": "x"}, "s", "$", None) == "x"
    assert [str(e) for e in c.errors] == ["$.s: expected a non-empty string, got string ''"]
