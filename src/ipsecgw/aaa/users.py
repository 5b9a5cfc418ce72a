"""Local users (`username NAME password SECRET`): the `local` XAUTH method."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


def check_local(users: Mapping[str, str], username: str, password: str) -> bool:
    """Whether `username` is a local user with this password.

    Compared in constant time, and an unknown user costs the same as a
    wrong password, so timing tells an attacker neither.
    """
    expected = users.get(username)
    matches = hmac.compare_digest((expected or "").encode(), password.encode())
    return expected is not None and matches
