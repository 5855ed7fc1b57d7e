"""The settle window: ready only after the signature stayed the same for settle_s."""

from __future__ import annotations

import pytest

from daemon.settle import Settler

SIG_A = (10, 1, 1, 7)
SIG_B = (20, 2, 2, 7)


def test_a_file_is_ready_once_unchanged_for_the_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=100.0, sig=SIG_A)
    assert s.due(100.4) == []
    assert s.due(100.5) == ["f"]
    assert s.check("f", 100.5, SIG_A) is True
    assert "f" not in s and len(s) == 0


def test_a_change_seen_at_the_deadline_restarts_the_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A)
    assert s.due(0.5) == ["f"]
    assert s.check("f", 0.5, SIG_B) is False  # grew since the event: wait again
    assert s.due(0.9) == []
    assert s.due(1.0) == ["f"]
    assert s.check("f", 1.0, SIG_B) is True


def test_every_event_pushes_the_deadline_back() -> None:
    s = Settler(0.5)
    for i in range(30):  # an append every 100 ms
        s.touch("f", now=i * 0.1, sig=(i, i, i, 7))
        assert s.due(i * 0.1) == []
    assert s.next_deadline() == pytest.approx(3.4)
    assert s.due(3.39) == []
    assert s.due(3.41) == ["f"]


def test_forget_drops_a_pending_file_and_its_deadline() -> None:
    s = Settler(0.5)
    s.touch("gone", now=0.0, sig=SIG_A)
    s.touch("kept", now=0.1, sig=SIG_A)
    s.forget("gone")
    assert s.next_deadline() == 0.6
    assert s.due(10.0) == ["kept"]


def test_oldest_reports_the_longest_waiting_file() -> None:
    s = Settler(0.5)
    assert s.oldest() is None
    s.touch("a", now=5.0, sig=SIG_A)
    s.touch("b", now=7.0, sig=SIG_A)
    s.touch("a", now=8.0, sig=SIG_B)  # a change does not make it younger
    assert s.oldest() == 5.0


def test_a_close_after_write_halves_the_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A)  # created
    s.touch("f", now=0.1, sig=SIG_B, closed=True)  # written and closed (cp)
    assert s.due(0.34) == []
    assert s.due(0.35) == ["f"]
    assert s.check("f", 0.35, SIG_B) is True


def test_a_write_after_a_close_restores_the_full_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A, closed=True)
    s.touch("f", now=0.1, sig=SIG_B)  # reopened and appended to
    assert s.due(0.4) == []
    assert s.due(0.6) == ["f"]
    assert s.check("f", 0.6, SIG_B) is True


def test_a_change_no_event_reported_after_a_close_gets_the_full_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A, closed=True)
    assert s.due(0.25) == ["f"]
    assert s.check("f", 0.25, SIG_B) is False  # it changed: a lost event, or NFS
    assert s.due(0.7) == []
    assert s.due(0.75) == ["f"]


def test_a_file_renamed_in_waits_only_for_a_quick_recheck() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A, renamed=True)
    assert s.due(0.004) == []
    assert s.due(0.005) == ["f"]
    assert s.check("f", 0.005, SIG_A) is True


def test_a_write_after_the_rename_restores_the_full_window() -> None:
    s = Settler(0.5)
    s.touch("f", now=0.0, sig=SIG_A, renamed=True)
    s.touch("f", now=0.001, sig=SIG_B)  # the writer still had it open
    assert s.due(0.1) == []
    assert s.due(0.501) == ["f"]
    s = Settler(0.5)
    s.touch("g", now=0.0, sig=SIG_A, renamed=True)
    assert s.due(0.005) == ["g"]
    assert s.check("g", 0.005, SIG_B) is False, "changed at the re-stat: settle it fully"
    assert s.due(0.4) == [] and s.due(0.505) == ["g"]
