"""The movement tick stretches while the process's event loop runs late, and comes back when it keeps up."""

from rooms.hub import TickPacer


def test_the_tick_keeps_its_period_while_the_loop_keeps_up():
    pacer = TickPacer(0.05, 0.15)
    assert [pacer.observe(0.002) for _ in range(5)] == [0.05] * 5


def test_a_late_loop_stretches_the_tick_up_to_the_longest_period_and_it_recovers():
    pacer = TickPacer(0.05, 0.15)
    stretched = [pacer.observe(0.04) for _ in range(6)]
    assert stretched[0] > 0.05
    assert stretched == sorted(stretched) and stretched[-1] == 0.15
    recovered = [pacer.observe(0.001) for _ in range(30)]
    assert recovered == sorted(recovered, reverse=True) and recovered[-1] == 0.05


def test_a_longest_period_below_the_base_keeps_the_tick_fixed():
    pacer = TickPacer(0.05, 0.01)
    assert pacer.observe(1.0) == 0.05
