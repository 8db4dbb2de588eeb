"""Backup spreading: the concurrency bound, determinism and stability, as properties."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from components.backup_slots import BackupWindow, SlotCapacityError, assign_slots, parse_clock, slot_preferences

site_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
# At most 75% of the window's capacity is used: the guarantee below is stated for that load.
problems = st.integers(min_value=1, max_value=24).flatmap(
    lambda slots: st.integers(min_value=1, max_value=4).flatmap(
        lambda capacity: st.tuples(
            st.just(slots),
            st.just(capacity),
            st.sets(site_names, min_size=1, max_size=max(1, (slots * capacity * 3) // 4 - 1)),
        )
    )
)

# Adding or removing one site moves at most this many *other* backups (measured tail: see
# bench/backup_slots.py; the displaced jobs always form one chain, asserted separately).
STABILITY_BOUND = 6


@settings(max_examples=300, derandomize=True, deadline=None)
@given(problems)
def test_capacity_is_never_exceeded(problem: tuple[int, int, set[str]]) -> None:
    slots, capacity, jobs = problem
    assignment = assign_slots(jobs, slots, capacity)
    assert set(assignment) == jobs
    assert all(0 <= slot < slots for slot in assignment.values())
    assert max(Counter(assignment.values()).values()) <= capacity


@settings(max_examples=200, derandomize=True, deadline=None)
@given(problems, st.randoms(use_true_random=False))
def test_deterministic_and_order_independent(problem: tuple[int, int, set[str]], rnd: object) -> None:
    slots, capacity, jobs = problem
    ordered = sorted(jobs)
    shuffled = list(ordered)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert assign_slots(ordered, slots, capacity) == assign_slots(shuffled, slots, capacity)


@settings(max_examples=400, derandomize=True, deadline=None)
@given(problems, site_names)
def test_adding_one_site_moves_few_others(problem: tuple[int, int, set[str]], newcomer: str) -> None:
    slots, capacity, jobs = problem
    jobs = jobs - {newcomer}
    assume(jobs and 4 * (len(jobs) + 1) <= 3 * slots * capacity)
    before = assign_slots(jobs, slots, capacity)
    after = assign_slots(jobs | {newcomer}, slots, capacity)
    moved = [job for job in jobs if before[job] != after[job]]
    assert len(moved) <= STABILITY_BOUND
    # Structure behind the bound: every moved job moves to a slot it ranks lower (a chain of
    # displacements), and every slot's occupancy changes by at most one.
    for job in moved:
        prefs = slot_preferences(job, slots)
        assert prefs.index(after[job]) > prefs.index(before[job])
    delta = Counter(after.values())
    delta.subtract(Counter(before.values()))
    assert all(abs(change) <= 1 for change in delta.values())


@settings(max_examples=300, derandomize=True, deadline=None)
@given(problems)
def test_removing_one_site_moves_few_others(problem: tuple[int, int, set[str]]) -> None:
    slots, capacity, jobs = problem
    leaving = sorted(jobs)[0]
    before = assign_slots(jobs, slots, capacity)
    after = assign_slots(jobs - {leaving}, slots, capacity)
    moved = [job for job in after if before[job] != after[job]]
    assert len(moved) <= STABILITY_BOUND


def test_spreads_instead_of_stacking() -> None:
    jobs = {f"files/site{i}" for i in range(16)}
    assignment = assign_slots(jobs, 16, 2)
    # 16 jobs in 16 slots of 2: nothing over the bound, and most slots are used.
    assert len(set(assignment.values())) >= 10


def test_pinned_jobs_keep_their_slot_and_count_against_capacity() -> None:
    jobs = {f"files/s{i}" for i in range(10)}
    assignment = assign_slots(jobs, 5, 2, pinned={"files/s0": 3, "files/s1": 3})
    assert assignment["files/s0"] == assignment["files/s1"] == 3
    assert Counter(assignment.values())[3] == 2


def test_too_many_jobs_is_an_error() -> None:
    with pytest.raises(SlotCapacityError, match="5 backup jobs do not fit 2 slots x 2 concurrent"):
        assign_slots({f"j{i}" for i in range(5)}, 2, 2)


def test_over_pinned_slot_is_an_error() -> None:
    with pytest.raises(SlotCapacityError) as caught:
        assign_slots(set(), 4, 1, pinned={"a": 2, "b": 2})
    assert caught.value.jobs == ("b",)


def test_window_wraps_past_midnight() -> None:
    window = BackupWindow.from_clock("23:00", "01:00", 30)
    assert window.slot_count == 4
    assert [window.slot_start(s) for s in range(4)] == [(23, 0), (23, 30), (0, 0), (0, 30)]
    assert window.slot_of_clock("00:30") == 3
    with pytest.raises(ValueError, match="outside the backup window"):
        window.slot_of_clock("01:00")


@pytest.mark.parametrize("bad", ["24:00", "1:00", "01:60", "0100", "ab:cd", ""])
def test_parse_clock_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_clock(bad)


@given(
    job=st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
    slot_count=st.integers(min_value=1, max_value=300),
)
def test_slot_preferences_are_the_rendezvous_order(job: str, slot_count: int) -> None:
    """The prefix-hash shortcut ranks exactly as hashing each "slot", job, slot triple would."""
    from components.backup_slots import _rank

    expected = sorted(range(slot_count), key=lambda slot: _rank("slot", job, slot))
    assert slot_preferences(job, slot_count) == expected
