"""Address pools and local users (issue 16, aaa package)."""

from __future__ import annotations

import pytest

from ipsecgw.aaa.pools import AddressPool, PoolExhausted
from ipsecgw.aaa.users import check_local


def test_a_pool_lends_its_lowest_free_address_and_takes_it_back() -> None:
    pool = AddressPool("p", "10.200.0.1", "10.200.0.3")
    assert [pool.allocate() for _ in range(3)] == ["10.200.0.1", "10.200.0.2", "10.200.0.3"]
    with pytest.raises(PoolExhausted, match="pool p exhausted"):
        pool.allocate()
    pool.release("10.200.0.2")
    assert pool.in_use == 2
    assert pool.allocate() == "10.200.0.2"
    pool.release("10.9.9.9")  # never lent: nothing happens
    assert pool.in_use == 3


def test_a_reserved_address_is_not_lent_twice() -> None:
    pool = AddressPool("p", "10.200.0.1", "10.200.0.4")
    assert pool.reserve("10.200.0.1")
    assert not pool.reserve("10.200.0.1")
    assert pool.allocate() == "10.200.0.2"
    assert pool.contains("10.200.0.4") and not pool.contains("10.200.0.5")


def test_a_resized_pool_keeps_what_it_lent_inside_its_new_range() -> None:
    pool = AddressPool("p", "10.200.0.1", "10.200.0.4")
    for _ in range(3):
        pool.allocate()
    smaller = pool.resized("10.200.0.2", "10.200.0.3")
    assert smaller.in_use == 2
    with pytest.raises(PoolExhausted):
        smaller.allocate()
    with pytest.raises(ValueError, match="above"):
        AddressPool("q", "10.0.0.2", "10.0.0.1")


def test_local_users_need_the_exact_password() -> None:
    users = {"alice": "wonderland"}
    assert check_local(users, "alice", "wonderland")
    assert not check_local(users, "alice", "Wonderland")
    assert not check_local(users, "mallory", "")
    assert not check_local(users, "alice", "")
