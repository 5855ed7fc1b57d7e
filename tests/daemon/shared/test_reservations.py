"""Shared mode's name reservations (`daemon.shared.reservations`, `moves.hold_name`): one
input per name, on real folders."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from daemon.moves import transition
from daemon.shared import reservations
from daemon.states import FileRef, Folders, State

ROOT = Path(__file__).resolve().parents[3]
UID1, UID2 = "1" * 32, "2" * 32


def _folders(tmp_path: Path, instance: str) -> Folders:
    f = Folders(tmp_path / "w", tmp_path / "r", instance=instance)
    f.create()
    return f


def _claimed(f: Folders, rel: str, data: str = "x") -> str:
    path = Path(f.dirs[State.CLAIMED]) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    return str(path)


def test_a_name_is_held_by_one_input_and_released_only_by_it(tmp_path: Path) -> None:
    a, b = _folders(tmp_path, "a"), _folders(tmp_path, "b")
    first, second = _claimed(a, "x.log"), _claimed(b, "x.log")
    assert reservations.reserve(a, "x.log", UID1, first)
    assert os.stat(first).st_nlink == 2, "a hard link to the claimed file: no new inode"
    assert reservations.reserve(a, "x.log", UID1, first), "the same input finds the name its own"
    assert not reservations.reserve(b, "x.log", UID2, second)
    reservations.release(b, "x.log", UID2, second)  # not its own: left alone
    assert not reservations.reserve(b, "x.log", UID2, second)
    taken_over = str(Path(b.dirs[State.CLAIMED]) / "moved.log")
    os.rename(first, taken_over)  # the same input (inode) on another instance
    assert reservations.reserve(b, "x.log", UID1, taken_over)
    reservations.release(a, "x.log", UID1, taken_over)
    assert os.stat(taken_over).st_nlink == 1
    assert reservations.reserve(b, "x.log", UID2, second)


def test_racing_reservations_of_one_name_have_exactly_one_winner(tmp_path: Path) -> None:
    folders = [_folders(tmp_path, f"i{k}") for k in range(8)]
    won: list[str] = []
    start = threading.Barrier(len(folders))

    def race(k: int) -> None:
        held = _claimed(folders[k], "mine.log", str(k))
        start.wait()
        for n in range(200):
            if reservations.reserve(folders[k], f"n{n}.log", f"{k:032x}", held):
                won.append(f"n{n}.log")

    threads = [threading.Thread(target=race, args=(k,)) for k in range(len(folders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == sorted(f"n{n}.log" for n in range(200))  # each name once


def test_stale_reservations_are_dropped_at_start_and_live_ones_kept(tmp_path: Path) -> None:
    f = _folders(tmp_path, "i0")
    live, gone = _claimed(f, "sub dir/new\nline ü.log"), _claimed(f, "gone.log")
    assert reservations.reserve(f, "sub dir/new\nline ü.log", UID1, live)
    assert reservations.reserve(f, "gone.log", UID2, gone)
    os.unlink(gone)  # the file is gone everywhere: its reservation is its only link
    old = reservations.path_of(f, "old.log")  # as an earlier version wrote one: text in a file
    Path(old).write_text(f"{'3' * 32}\ni0\nold.log\n")
    peer = reservations.path_of(f, "peer.log")
    Path(peer).write_text(f"{'4' * 32}\ni1\npeer.log\n")  # another instance's: not ours
    assert not reservations.reserve(f, "old.log", UID1, live)
    assert reservations.drop_stale(f) == 2  # gone.log and old.log (i0 holds nothing under it)
    assert not os.path.lexists(old) and os.path.lexists(peer)
    assert not os.path.lexists(reservations.path_of(f, "gone.log"))
    other = _claimed(f, "other.log")
    assert not reservations.reserve(f, "sub dir/new\nline ü.log", UID2, other), "held stays held"


def test_a_file_that_may_not_be_linked_is_reserved_by_a_symlink(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to drop CAP_FOWNER for a file of another user")
    f = _folders(tmp_path, "i0")
    held = _claimed(f, "theirs.log")
    os.chown(held, 65534, 65534)  # fs.protected_hardlinks refuses a link to it without
    code = (  # CAP_FOWNER (and CAP_DAC_OVERRIDE, which would make it writable)
        "import sys; from pathlib import Path; from daemon.shared import reservations;"
        "from daemon.states import Folders;"
        f"f = Folders(Path({str(tmp_path / 'w')!r}), Path({str(tmp_path / 'r')!r}), instance='i0');"
        f"print(reservations.reserve(f, 'theirs.log', {UID1!r}, {held!r}),"
        f" reservations.reserve(f, 'theirs.log', {UID2!r}, {held!r}),"
        f" reservations.reserve(f, 'theirs.log', {UID1!r}, {held!r}))"
    )
    out = subprocess.run(
        ["setpriv", "--bounding-set=-fowner,-dac_override", sys.executable, "-c", code],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.split() == ["True", "False", "True"]  # the same input finds it its own
    assert os.readlink(reservations.path_of(f, "theirs.log")) == f"{UID1}\ni0\ntheirs.log"
    reservations.release(f, "theirs.log", UID2, held)  # not its own: left alone
    assert os.path.lexists(reservations.path_of(f, "theirs.log"))
    reservations.release(f, "theirs.log", UID1, held)
    assert not os.path.lexists(reservations.path_of(f, "theirs.log"))


def test_a_claim_that_finds_its_name_held_by_a_peer_takes_the_next(tmp_path: Path) -> None:
    mine, peer = _folders(tmp_path, "i0"), _folders(tmp_path, "i1")
    # The peer looked before this instance's claim and holds a.log for another input,
    # not yet visible in its folder (it is between its rename and its look).
    assert reservations.reserve(peer, "a.log", UID2, _claimed(peer, ".elsewhere"))
    (Path(mine.dirs[State.QUEUED]) / "a.log").write_text("mine\n")
    st = os.lstat(Path(mine.dirs[State.QUEUED]) / "a.log")
    ref = FileRef(UID1, "a.log", State.QUEUED, 1, "a.log", st.st_size, st.st_ino)
    transition(mine, None, ref, State.CLAIMED)
    assert ref.rel == "a~1.log"
    assert (Path(mine.dirs[State.CLAIMED]) / "a~1.log").read_text() == "mine\n"
    assert not (Path(mine.dirs[State.CLAIMED]) / "a.log").exists()
    assert reservations.reserve(
        mine, "a~1.log", UID1, str(Path(mine.dirs[State.CLAIMED]) / "a~1.log")
    )
    assert not reservations.reserve(peer, "a~1.log", UID2, _claimed(peer, ".other"))


def test_names_held_with_no_file_to_show_are_passed_over_not_tried_again(
    tmp_path: Path,
) -> None:
    # Links a crash left behind whose files were deleted since: nothing shows the names
    # taken but their reservations. The claim must move on, not bounce between them.
    mine, peer = _folders(tmp_path, "i0"), _folders(tmp_path, "i1")
    for rel in ("b.log", "b~1.log"):
        gone = _claimed(peer, f".{rel}")
        assert reservations.reserve(peer, rel, UID2, gone)
        os.unlink(gone)
    (Path(mine.dirs[State.QUEUED]) / "b.log").write_text("mine\n")
    st = os.lstat(Path(mine.dirs[State.QUEUED]) / "b.log")
    ref = FileRef(UID1, "b.log", State.QUEUED, 1, "b.log", st.st_size, st.st_ino)
    transition(mine, None, ref, State.CLAIMED)
    assert ref.rel == "b~2.log"
    assert sorted(os.listdir(mine.dirs[State.CLAIMED])) == ["b~2.log"]


def test_a_taker_keeps_the_name_while_the_instance_it_took_from_lets_it_go(
    tmp_path: Path,
) -> None:
    """A takeover holds the name under the input's uid while the instance it took the file
    from, finding it gone, drops its own reservation of it (`release_gone`). Seen over
    sshfs: the taker's create met the old reservation, which was gone when it looked, and
    it renamed the input to `~1` — one input, two names. Each look must find it held."""
    taker = _folders(tmp_path, "taker")
    reservations.hold_by_text(taker)  # inputs named by record: text reservations
    held = _claimed(taker, "x.log")
    path = reservations.path_of(taker, "x.log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # The other instance, in a process of its own: lets its reservation go when told.
    release = (
        "import os, sys\n"
        "for _ in sys.stdin:\n"
        "    try:\n        os.unlink(sys.argv[1])\n    except FileNotFoundError:\n        pass\n"
    )
    other = subprocess.Popen([sys.executable, "-c", release, path], stdin=subprocess.PIPE)
    assert other.stdin is not None
    refused = 0
    try:
        for _ in range(3000):
            os.symlink(f"{UID1}\ndead\nx.log", path)  # the claim it was taken from
            other.stdin.write(b"\n")
            other.stdin.flush()  # its release races the taker's reservation
            refused += not reservations.reserve(taker, "x.log", UID1, held)
            reservations.release(taker, "x.log", UID1, held)
            while os.path.lexists(path):  # its release came last: let it land
                os.sched_yield()
    finally:
        other.stdin.close()
        other.wait(30)
    assert refused == 0, f"{refused} of 3000 reservations of its own input refused"
