"""AuthFailureGuard: bans after repeated failures, with a fake clock."""

from __future__ import annotations

import pytest

from pbx.registrar.security import AuthFailureGuard, BanEvent, GuardStats

T0 = 1_000.0


def _fail(
    guard: AuthFailureGuard, host: str, times: int, start: float, step: float = 1.0
) -> list[BanEvent | None]:
    return [guard.record_failure(host, start + i * step) for i in range(times)]


def test_ban_after_max_failures_within_the_window() -> None:
    guard = AuthFailureGuard(max_failures=5, window=60.0, ban_seconds=600.0)
    events = _fail(guard, "192.0.2.7", 5, T0)
    assert events[:4] == [None] * 4
    assert events[4] == BanEvent(
        host="192.0.2.7", scope="192.0.2.7", until=T0 + 4 + 600, failures=5
    )
    assert guard.is_banned("192.0.2.7", T0 + 5)
    assert not guard.is_banned("192.0.2.8", T0 + 5)
    assert guard.stats == GuardStats(failures=5, bans=1, blocked=1, banned=1, tracked=0)


def test_no_ban_when_failures_are_spread_out() -> None:
    guard = AuthFailureGuard(max_failures=3, window=60.0, ban_seconds=600.0)
    # 3 failures, but never 3 within 60 s: the window slides with them.
    assert _fail(guard, "192.0.2.7", 10, T0, step=31.0) == [None] * 10
    assert not guard.is_banned("192.0.2.7", T0 + 400)
    assert guard.stats.bans == 0


def test_sliding_window_catches_bursts_across_slot_boundaries() -> None:
    guard = AuthFailureGuard(max_failures=4, window=10.0, ban_seconds=60.0)
    # Two failures late in one 10 s slot and two early in the next: a fixed window would miss it.
    times = [T0 + 8, T0 + 9, T0 + 11, T0 + 12]
    events = [guard.record_failure("198.51.100.1", t) for t in times]
    assert events[-1] is not None and events[-1].failures == 4


def test_window_is_inclusive() -> None:
    guard = AuthFailureGuard(max_failures=2, window=10.0, ban_seconds=60.0)
    assert guard.record_failure("192.0.2.1", T0) is None
    assert guard.record_failure("192.0.2.1", T0 + 10.0) is not None
    guard2 = AuthFailureGuard(max_failures=2, window=10.0, ban_seconds=60.0)
    assert guard2.record_failure("192.0.2.1", T0) is None
    assert guard2.record_failure("192.0.2.1", T0 + 10.5) is None


def test_ban_is_lifted_after_ban_seconds_and_counting_starts_afresh() -> None:
    guard = AuthFailureGuard(max_failures=3, window=60.0, ban_seconds=300.0)
    event = _fail(guard, "192.0.2.7", 3, T0)[-1]
    assert event is not None and event.until == T0 + 2 + 300
    assert guard.is_banned("192.0.2.7", event.until - 0.001)
    assert not guard.is_banned("192.0.2.7", event.until)
    assert guard.stats.banned == 0
    # The history was cleared by the ban: it takes max_failures new failures to ban again.
    assert _fail(guard, "192.0.2.7", 2, event.until) == [None, None]
    assert guard.record_failure("192.0.2.7", event.until + 3) is not None
    assert guard.stats.bans == 2


def test_failures_while_banned_do_not_extend_the_ban() -> None:
    guard = AuthFailureGuard(max_failures=2, window=60.0, ban_seconds=100.0)
    event = _fail(guard, "192.0.2.7", 2, T0)[-1]
    assert event is not None
    assert _fail(guard, "192.0.2.7", 5, T0 + 10) == [None] * 5
    assert not guard.is_banned("192.0.2.7", event.until)
    assert guard.stats.failures == 7


def test_success_resets_the_failure_count() -> None:
    guard = AuthFailureGuard(max_failures=3, window=60.0, ban_seconds=300.0)
    _fail(guard, "192.0.2.7", 2, T0)
    guard.record_success("192.0.2.7", T0 + 3)
    assert _fail(guard, "192.0.2.7", 2, T0 + 4) == [None, None]
    assert guard.record_failure("192.0.2.7", T0 + 6) is not None


def test_success_does_not_lift_a_ban() -> None:
    guard = AuthFailureGuard(max_failures=1, window=60.0, ban_seconds=300.0)
    assert guard.record_failure("192.0.2.7", T0) is not None
    guard.record_success("192.0.2.7", T0 + 1)
    assert guard.is_banned("192.0.2.7", T0 + 2)


@pytest.mark.parametrize("host", ["10.1.2.3", "192.0.2.200", "2001:db8:ffff::1", "[::1]", "::1"])
def test_trusted_sources_are_never_banned(host: str) -> None:
    guard = AuthFailureGuard(
        max_failures=2,
        window=60.0,
        ban_seconds=300.0,
        trusted=["10.0.0.0/8", "192.0.2.200", "2001:db8:ffff::/48", "::1"],
    )
    assert _fail(guard, host, 50, T0, step=0.1) == [None] * 50
    assert not guard.is_banned(host, T0 + 5)
    assert guard.stats.failures == 50
    assert guard.stats.bans == 0
    assert guard.stats.tracked == 0


def test_ipv6_hosts_are_banned_by_their_slash_64() -> None:
    guard = AuthFailureGuard(max_failures=3, window=60.0, ban_seconds=300.0)
    # An attacker rotating addresses inside one /64 is still one source.
    hosts = ["2001:db8:1:2::1", "2001:db8:1:2::abcd", "[2001:DB8:1:2:ffff::9]"]
    events = [guard.record_failure(h, T0 + i) for i, h in enumerate(hosts)]
    assert events[:2] == [None, None]
    assert events[2] == BanEvent(
        host="[2001:DB8:1:2:ffff::9]", scope="2001:db8:1:2::/64", until=T0 + 2 + 300, failures=3
    )
    assert guard.is_banned("2001:db8:1:2:5:6:7:8", T0 + 3)
    assert not guard.is_banned("2001:db8:1:3::1", T0 + 3)


def test_ipv6_exact_hosts_when_configured() -> None:
    guard = AuthFailureGuard(max_failures=2, window=60.0, ban_seconds=300.0, ipv6_prefix=128)
    assert guard.record_failure("2001:db8::1", T0) is None
    assert guard.record_failure("2001:db8::2", T0) is None
    event = guard.record_failure("2001:0db8:0000::1", T0 + 1)
    assert event is not None and event.scope == "2001:db8::1"
    assert guard.is_banned("2001:db8::1", T0 + 2)
    assert not guard.is_banned("2001:db8::2", T0 + 2)


def test_trusted_host_inside_a_banned_ipv6_network_is_let_through() -> None:
    guard = AuthFailureGuard(
        max_failures=2, window=60.0, ban_seconds=300.0, trusted=["2001:db8::10"]
    )
    _fail(guard, "2001:db8::66", 2, T0)
    assert guard.is_banned("2001:db8::67", T0 + 3)
    assert not guard.is_banned("2001:db8::10", T0 + 3)


def test_ipv4_mapped_ipv6_counts_as_ipv4() -> None:
    guard = AuthFailureGuard(max_failures=2, window=60.0, ban_seconds=300.0)
    guard.record_failure("::ffff:192.0.2.9", T0)
    event = guard.record_failure("192.0.2.9", T0 + 1)
    assert event is not None and event.scope == "192.0.2.9"
    assert guard.is_banned("::ffff:192.0.2.9", T0 + 2)


def test_non_ip_hosts_are_tracked_by_name() -> None:
    guard = AuthFailureGuard(max_failures=2, window=60.0, ban_seconds=300.0)
    guard.record_failure("Gateway.example", T0)
    assert guard.record_failure("gateway.example", T0) is not None
    assert guard.is_banned("GATEWAY.example", T0 + 1)


def test_expire_bounds_memory() -> None:
    guard = AuthFailureGuard(max_failures=3, window=10.0, ban_seconds=30.0)
    for i in range(5_000):
        # one failure from each of many sources, a new one every 10 ms
        guard.record_failure(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", T0 + i * 0.01)
        assert guard.stats.tracked <= 1_002
    for i in range(200):
        _fail(guard, f"172.16.0.{i}", 3, T0 + 100 + i * 0.01, step=0.001)
    assert guard.stats.banned == 200
    guard.expire(T0 + 100 + 200 * 0.01 + 31)
    assert guard.stats.banned == 0
    assert guard.stats.tracked == 0


def test_max_tracked_caps_both_tables() -> None:
    guard = AuthFailureGuard(max_failures=1, window=60.0, ban_seconds=300.0, max_tracked=10)
    for i in range(50):
        guard.record_failure(f"192.0.2.{i}", T0 + i * 0.01)
    assert guard.stats.banned == 10
    assert guard.is_banned("192.0.2.49", T0 + 1)  # the newest bans survive
    assert not guard.is_banned("192.0.2.0", T0 + 1)
    guard2 = AuthFailureGuard(max_failures=5, window=60.0, ban_seconds=300.0, max_tracked=10)
    for i in range(50):
        guard2.record_failure(f"192.0.2.{i}", T0 + i * 0.01)
    assert guard2.stats.tracked == 10


def test_blocked_requests_are_counted() -> None:
    guard = AuthFailureGuard(max_failures=1, window=60.0, ban_seconds=300.0)
    assert not guard.is_banned("192.0.2.1", T0)
    guard.record_failure("192.0.2.1", T0)
    for _ in range(3):
        assert guard.is_banned("192.0.2.1", T0 + 1)
    assert guard.stats.blocked == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_failures": 0}, "max_failures must be at least 1"),
        ({"window": 0.0}, "window must be positive"),
        ({"ban_seconds": -1.0}, "ban_seconds must be positive"),
        ({"trusted": ["10.0.0.0/8", "office"]}, "trusted entry 'office'"),
        ({"ipv6_prefix": 0}, "ipv6_prefix must be between 1 and 128"),
        ({"max_tracked": 0}, "max_tracked must be at least 1"),
    ],
)
def test_bad_configuration_is_named(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"max_failures": 3, "window": 60.0, "ban_seconds": 300.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        AuthFailureGuard(**args)  # type: ignore[arg-type]
