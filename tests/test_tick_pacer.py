"""The movement tick stretches while the process's event loop stays late, and comes back when it keeps up."""

from rooms.hub import TickPacer


def test_the_tick_keeps_its_period_while_the_loop_keeps_up_or_is_late_now_and_then():
    pacer = TickPacer(0.05, 0.15)
    assert [pacer.observe(0.002) for _ in range(5)] == [0.05] * 5
    assert [pacer.observe(late) for late in (0.04, 0.002, 0.03, 0.001, 0.09, 0.002)] == [0.05] * 6


def test_a_loop_that_stays_late_stretches_the_tick_up_to_the_longest_period_and_it_recovers():
    pacer = TickPacer(0.05, 0.15)
    stretched = [pacer.observe(0.1) for _ in range(20)]
    assert stretched == sorted(stretched) and stretched[0] == 0.05 and stretched[-1] == 0.15
    recovered = [pacer.observe(0.001) for _ in range(40)]
    assert recovered[-1] == 0.05 and max(recovered) <= 0.15


def test_a_longest_period_below_the_base_keeps_the_tick_fixed():
    pacer = TickPacer(0.05, 0.01)
    assert [pacer.observe(1.0) for _ in range(5)] == [0.05] * 5
