"""Times as written in logs into RFC 3339 (`2026-11-22T10:00:00.250+01:00`).

A `Clock` serves one file. Times written without an offset get the zone of the `tz`
option (`local`: the machine's, with its daylight saving time; `UTC`; a fixed offset like
`+05:30`; or a zone name like `Europe/Paris`), looked up once per minute of the log and
cached. Times written without a year (syslog's `Nov 22 10:00:00`, logcat, glog) get the
latest year that does not put them more than a day after the clock's `now`, so a log of
late December read in January lands in December of last year. The fraction of a second
keeps the digits the log wrote. A date that does not exist gets no RFC 3339 time at all.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import ConfigError

MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)")
_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?\s*"
    r"(Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)?"
)
_CACHE_MAX = 4096


def zone(key: str, value: object) -> tzinfo | None:
    """The `tz` option checked: None for the machine's local time, else a tzinfo."""
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"expected a time zone name, got {value!r}")
    if value == "local":
        return None
    if value in ("UTC", "Z", "utc"):
        return UTC
    m = _OFFSET.fullmatch(value)
    if m is not None:
        sign, hours, minutes = m.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise ConfigError(key, f"offset {value!r} is a day or more")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            key,
            f"unknown time zone {value!r}",
            'use "local", "UTC", an offset like "+02:00", or a name like "Europe/Paris"',
        ) from None


def offset_text(delta: timedelta | None) -> str:
    if not delta:
        return "Z"
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class Clock:
    """Turns one file's log times into RFC 3339 text (see the module doc)."""

    def __init__(
        self, tz: tzinfo | None = None, year: int | None = None, now: datetime | None = None
    ) -> None:
        self.tz = tz
        self.year = year
        today = (now or datetime.now(tz or UTC)).date()
        self.latest = today + timedelta(days=1)  # inferred years never pass this
        self._offsets: dict[str, str | None] = {}
        # per date "YYYY-MM-DD": the offset of the whole day, "" when it changes during
        # the day (daylight saving time), None when the date does not exist
        self.days: dict[str, str | None] = {}
        self._years: dict[tuple[int, int], int | None] = {}

    # -- offsets ---------------------------------------------------------------------

    def offset(self, key: str) -> str | None:
        """The zone's offset at `key` ("YYYY-MM-DD HH:MM…", the first 16 characters are
        read), or None when that is no valid time."""
        found = self._offsets.get(key[:16], False)
        if found is False:
            found = self._lookup(key[:16])
        return found  # type: ignore[return-value]

    def _lookup(self, key: str) -> str | None:
        if len(self._offsets) >= _CACHE_MAX:
            self._offsets.clear()
        try:
            when = datetime(int(key[:4]), int(key[5:7]), int(key[8:10]), int(key[11:13]),
                             int(key[14:16] or 0))  # fmt: skip
            if self.tz is None:
                delta = when.astimezone().utcoffset()
            else:
                delta = when.replace(tzinfo=self.tz).utcoffset()
            found: str | None = offset_text(delta)
        except (ValueError, OverflowError):
            found = None
        self._offsets[key] = found
        return found

    def day(self, date: str) -> str | None:
        """The offset all of `date` has ("" if it changes that day; None: no such day)."""
        found = self.days.get(date, False)
        if found is False:
            if len(self.days) >= _CACHE_MAX:
                self.days.clear()
            first = self.offset(f"{date} 00:00")
            found = first if first is not None and first == self.offset(f"{date} 23:59") else ""
            if first is None:
                found = None
            self.days[date] = found
        return found  # type: ignore[return-value]

    # -- whole times -----------------------------------------------------------------

    def naive(self, day: str, hms: str, frac: str | None = None) -> str | None:
        """`day` "YYYY-MM-DD" and `hms` "HH:MM:SS" in the configured zone."""
        off = self.day(day)
        if off == "":
            off = self.offset(f"{day} {hms}")
        if off is None:
            return None
        if frac:
            return f"{day}T{hms}.{frac}{off}"
        return f"{day}T{hms}{off}"

    def iso(self, ts: str) -> str | None:
        """ISO 8601 and its relatives: `2026-11-22 10:00:00`, `…T10:00:00,250Z`,
        `… 10:00:00.123456+0100`, `… 10:00:00 UTC`."""
        if len(ts) == 19:  # the common case, no fraction nor zone: no regex
            return self.naive(ts[:10], ts[11:])
        m = _ISO.fullmatch(ts)
        if m is None:
            return None
        y, mo, d, hms, frac, zone_text = m.groups()
        if len(hms) == 5:
            hms += ":00"
        day = f"{y}-{mo}-{d}"
        if zone_text is None:
            return self.naive(day, hms, frac)
        if not _valid(day, hms):
            return None
        if zone_text in ("Z", "UTC", "GMT"):
            off = "Z"
        else:
            sign, hours, minutes = zone_text[0], zone_text[1:3], zone_text[3:].lstrip(":")
            minutes = minutes or "00"
            off = "Z" if hours == minutes == "00" else f"{sign}{hours}:{minutes}"
        return f"{day}T{hms}.{frac}{off}" if frac else f"{day}T{hms}{off}"

    def parts(
        self, year: int | None, month: int, day: int, hms: str, frac: str | None = None
    ) -> str | None:
        """A time from its parts; `year` None is inferred (see the module doc)."""
        if year is None:
            year = self.infer(month, day)
            if year is None:
                return None
        return self.naive(f"{year:04d}-{month:02d}-{day:02d}", hms, frac)

    def infer(self, month: int, day: int) -> int | None:
        """The year of a date written without one."""
        if self.year is not None:
            return self.year
        key = (month, day)
        found = self._years.get(key, 0)
        if found == 0:
            found = None
            for year in (self.latest.year, self.latest.year - 1, self.latest.year - 2,
                         self.latest.year - 3, self.latest.year - 4):  # fmt: skip
                try:
                    when = date(year, month, day)
                except ValueError:
                    continue  # 29 February: the last leap year
                if when <= self.latest:
                    found = year
                    break
            self._years[key] = found
        return found

    @staticmethod
    def epoch(seconds: float) -> str | None:
        """Seconds since 1970 (UTC), to the microsecond."""
        try:
            when = datetime.fromtimestamp(seconds, UTC)
        except (ValueError, OverflowError, OSError):
            return None
        text = when.isoformat(timespec="microseconds" if seconds % 1 else "seconds")
        return text.replace("+00:00", "Z")


def _valid(day: str, hms: str) -> bool:
    try:
        datetime(int(day[:4]), int(day[5:7]), int(day[8:10]), int(hms[:2]), int(hms[3:5]))
    except ValueError:
        return False
    return True
