"""The arithmetic of the rate limits (GCRA) and how a client address becomes a subject."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from acmegate.common.config import ConfigError, parse_config
from acmegate.common.config.model import RateLimit, RateLimitsConfig
from acmegate.common.errors import ErrorKind
from acmegate.frontend.client_address import TrustedProxies, limit_subject, parse_address
from acmegate.frontend.rate_limits import Limit, Limits

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_limit_spends_its_budget_at_once_and_regains_one_event_per_interval() -> None:
    limit = Limit.from_config("x", "things", RateLimit(limit=4, period="1h"))
    assert limit is not None
    assert limit.emission == timedelta(minutes=15)
    assert limit.tolerance == timedelta(minutes=45)
    # Four events at once move tat to now + 1h: the budget is spent.
    assert not limit.is_over(None, NOW)
    assert not limit.is_over(NOW + 3 * limit.emission, NOW)
    assert limit.is_over(NOW + 4 * limit.emission, NOW)
    # One interval later one event is allowed again.
    assert not limit.is_over(NOW + 4 * limit.emission, NOW + limit.emission)
    assert limit.retry_after(NOW + 4 * limit.emission, NOW) == 15 * 60
    assert (
        limit.retry_after(NOW + 4 * limit.emission, NOW + timedelta(minutes=14, seconds=59.5)) == 1
    )


def test_the_refusal_is_rate_limited_with_retry_after_and_names_the_limit() -> None:
    limits = Limits.from_config(RateLimitsConfig())
    assert limits.new_accounts is not None
    error = limits.new_accounts.exceeded("client 192.0.2.1", NOW + timedelta(hours=1), NOW)
    assert error.kind is ErrorKind.RATE_LIMITED
    assert error.retry_after == 36
    assert "100 new accounts per client address per 1h (client 192.0.2.1)" in error.detail


def test_a_limit_set_to_null_is_off_and_zero_is_refused() -> None:
    limits = Limits.from_config(RateLimitsConfig(new_orders_per_account=None))
    assert limits.new_orders is None
    with pytest.raises(ValueError, match="null"):
        RateLimit(limit=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.7", "192.0.2.7"),
        (" 192.0.2.7:4711 ", "192.0.2.7"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("unknown", None),
        ("", None),
        ("[2001:db8::1", None),
    ],
)
def test_addresses_as_proxies_write_them(text: str, expected: str | None) -> None:
    address = parse_address(text)
    assert (str(address) if address is not None else None) == expected


def test_an_ipv6_client_is_its_slash_64() -> None:
    assert limit_subject(ipaddress.ip_address("2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64"
    assert limit_subject(ipaddress.ip_address("198.51.100.4")) == "198.51.100.4"


def test_trusted_proxies_are_addresses_or_networks() -> None:
    proxies = TrustedProxies.from_config(["10.0.0.0/8", "192.0.2.1", "fd00::/8"])
    assert proxies.trusts(ipaddress.ip_address("10.20.30.40"))
    assert proxies.trusts(ipaddress.ip_address("192.0.2.1"))
    assert proxies.trusts(ipaddress.ip_address("fd12::1"))
    assert not proxies.trusts(ipaddress.ip_address("192.0.2.2"))
    assert not TrustedProxies().trusts(ipaddress.ip_address("127.0.0.1"))


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("server: {trusted_proxies: [nope]}", "'nope' is not an IP address or network"),
        ("admin: {trusted_proxies: [10.0.0.0/33]}", "is not an IP address or network"),
        ("rate_limits: {new_orders_per_account: {limit: 0}}", "limit must be at least 1"),
        ("rate_limits: {new_orders_per_acount: null}", "new_orders_per_acount"),
        ("retention: {orders: 0}", "retention periods must be positive"),
        ("admin: {external_url: ftp://x}", "external_url must be an absolute http(s) URL"),
    ],
)
def test_bad_limit_settings_are_configuration_errors(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(yaml_text, base_dir=Path("."))
