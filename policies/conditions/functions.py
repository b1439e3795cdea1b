"""What conditions may read and call: the variables, and the Python functions the CEL
library calls (`ip_in_range`, the time-zoned timestamp accessors).

Shared by `policies.conditions.compiler` (checking, compiling, the CEL activation) and
`policies.conditions.fastpath` (the Python fast path), so both see the same values and
call the same functions.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

VARIABLES: Mapping[str, str] = {
    "request.ip": "string",
    "request.user_agent": "string",
    "request.time": "timestamp",
    "request.mfa": "bool",
    "principal.type": "string",
    "principal.id": "string",
    "principal.tags": "map",
    "resource.type": "string",
    "resource.id": "string",
    "resource.project": "string",
    "resource.tags": "map",
}
# Read from the principal's and the resource's facts only when a condition reads them
# (`ConditionContext`); `resource.*` in a question about no resource is an error.
LAZY_VARIABLES = frozenset(
    name for name in VARIABLES if name == "principal.tags" or name.startswith("resource.")
)
ROOTS = frozenset(name.split(".", 1)[0] for name in VARIABLES)


@lru_cache(maxsize=1024)
def cached_network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=True)


# Requests come from few addresses; parsing one costs more than the whole CEL evaluation.
_address = lru_cache(maxsize=4096)(ipaddress.ip_address)


def ip_in_range(ip: str, cidr: str) -> bool:
    """True when address `ip` lies in network `cidr`; raises on a malformed argument.

    An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) is compared as IPv4. An address of
    the other IP version is simply not in the range. Raising (rather than answering
    False) makes a bad request address fail closed: it then matches deny rules.
    """
    if not isinstance(ip, str) or not isinstance(cidr, str):
        raise TypeError("ip_in_range expects two strings")
    address = _address(ip)
    network = cached_network(cidr)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped and network.version == 4:
        address = address.ipv4_mapped
    return address in network


_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


@lru_cache(maxsize=512)
def cached_timezone(name: str) -> dt.tzinfo:
    match = _OFFSET.match(name)
    if match:
        hours, minutes = int(match[2]), int(match[3])
        if hours <= 23 and minutes <= 59:
            sign = -1 if match[1] == "-" else 1
            return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'Unknown time zone "{name}"') from None


def _accessor(extract: Callable[[dt.datetime], int]) -> Callable[..., int]:
    # The native accessors take no time zone argument; the library falls back to these
    # Python functions of the same name for the one-argument form.
    def accessor(ts: dt.datetime, tz: str | None = None) -> int:
        if not isinstance(ts, dt.datetime):
            raise TypeError("expected a timestamp")
        return extract(ts.astimezone(dt.UTC if tz is None else cached_timezone(tz)))

    return accessor


# CEL numbering: months, days of month and of year from 0; getDate from 1; Sunday is 0.
TIMESTAMP_ACCESSORS: Mapping[str, Callable[..., int]] = {
    "getFullYear": _accessor(lambda d: d.year),
    "getMonth": _accessor(lambda d: d.month - 1),
    "getDate": _accessor(lambda d: d.day),
    "getDayOfMonth": _accessor(lambda d: d.day - 1),
    "getDayOfWeek": _accessor(lambda d: (d.weekday() + 1) % 7),
    "getDayOfYear": _accessor(lambda d: d.timetuple().tm_yday - 1),
    "getHours": _accessor(lambda d: d.hour),
    "getMinutes": _accessor(lambda d: d.minute),
    "getSeconds": _accessor(lambda d: d.second),
    "getMilliseconds": _accessor(lambda d: d.microsecond // 1000),
}

CUSTOM_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "ip_in_range": ip_in_range,
    **TIMESTAMP_ACCESSORS,
}
