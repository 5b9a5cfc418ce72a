"""`aaa authentication xauth {radius | local | radius local}`: who checks a user.

The methods are tried in the configured order. **Choice** (as IOS and
JUNOSe AAA method lists do): the next method is tried only when one could
not give an answer (RADIUS: no server configured or none answered); an
answer, accept or reject, is final. So `radius local` lets local users in
while the RADIUS servers are down, but never lets a user RADIUS refused in
with an old local password.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .radius import RadiusClient, RadiusServer, RadiusTimeout
from .users import check_local

log = logging.getLogger("ipsecgw.aaa")

Method = Literal["radius", "local"]


@dataclass(frozen=True)
class AuthSettings:
    order: tuple[Method, ...] = ("local",)
    servers: tuple[RadiusServer, ...] = ()  # authentication servers, in order
    users: Mapping[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    method: Method | None  # the method that answered; None when none could
    reason: str  # for the log and the client ("" when accepted)
    framed_address: str | None = None  # RADIUS Framed-IP-Address
    class_: bytes | None = None  # RADIUS Class, echoed in accounting
    interim_interval: int | None = None  # RADIUS Acct-Interim-Interval, seconds


async def authenticate(
    client: RadiusClient, settings: AuthSettings, username: str, password: str,
    *, calling_station: str | None = None,
) -> Outcome:
    unavailable: list[str] = []
    for method in settings.order:
        if method == "local":
            if check_local(settings.users, username, password):
                return Outcome(True, "local", "")
            return Outcome(False, "local", "wrong user name or password (local)")
        if not settings.servers:
            unavailable.append("no RADIUS server configured")
            continue
        try:
            reply = await client.authenticate(settings.servers, username, password,
                                              calling_station=calling_station)
        except RadiusTimeout as exc:
            unavailable.append(str(exc))
            continue
        if reply.accepted:
            return Outcome(True, "radius", "", reply.framed_address, reply.class_,
                           reply.interim_interval)
        why = f": {reply.message}" if reply.message else ""
        return Outcome(False, "radius", f"rejected by RADIUS server {reply.server}{why}")
    return Outcome(False, None, "; ".join(unavailable) or "no authentication method")
