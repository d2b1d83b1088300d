//! Event time: the [`Timestamp`] type and the parsers for the timestamp
//! formats that log lines carry.
//!
//! This module owns every conversion from log text to a [`Timestamp`]:
//!
//! * [`parse_rfc3339_prefix`] / [`parse_rfc3339`]: RFC 3339 and the ISO 8601
//!   variants that rsyslog and journald write (`±HHMM`, a space for `T`).
//! * [`parse_epoch`] / [`epoch_from_f64`]: epoch seconds or milliseconds, in
//!   text or as a JSON number.
//! * [`SyslogClock`]: syslog's year-less local `Mmm dd HH:MM:SS`, which needs
//!   a time zone and a reference time to infer the year from.
//! * [`days_from_civil`]: the calendar arithmetic under all of them.
//!
//! Every parser here is hand-written and allocation-free, because it runs on
//! every candidate line of the hot path. Every byte is attacker-controlled:
//! the parsers read through `get` and bounded arithmetic, and answer `None`
//! to anything they do not fully understand; none of them panics.

use std::fmt;

/// A point in time as milliseconds since the Unix epoch, UTC.
///
/// Milliseconds are enough for a detector whose windows are seconds long,
/// and an `i64` keeps comparisons and arithmetic trivial.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The wall-clock time now.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }

    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down.
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn saturating_add(self, d: std::time::Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_add(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    pub fn saturating_sub(self, d: std::time::Duration) -> Timestamp {
        Timestamp(
            self.0
                .saturating_sub(d.as_millis().min(i64::MAX as u128) as i64),
        )
    }

    /// The time from `earlier` to `self`, zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(self.0.saturating_sub(earlier.0).max(0) as u64)
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with millisecond precision, e.g.
    /// `2026-12-03T13:43:13.123Z`; whole seconds drop the fraction.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) if self.0 % 1000 == 0 => write!(f, "{}", ts.strftime("%Y-%m-%dT%H:%M:%SZ")),
            Ok(ts) => write!(f, "{}", ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")),
            Err(_) => write!(f, "@{}ms", self.0),
        }
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    /// The RFC 3339 form that `Serialize` writes.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        parse_rfc3339(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

// ---------------------------------------------------------------------------
// Calendar arithmetic
// ---------------------------------------------------------------------------

const SECS_PER_DAY: i64 = 86_400;
const MS_PER_DAY: i64 = 86_400_000;

/// 1990-01-01T00:00:00Z: epoch numbers before this are taken as garbage.
const EPOCH_MIN_MS: i64 = 631_152_000_000;
/// 2200-01-01T00:00:00Z: epoch numbers after this are taken as garbage.
const EPOCH_MAX_MS: i64 = 7_258_118_400_000;
/// Epoch numbers at or above this are milliseconds, below it seconds.
/// As seconds, 1e11 is the year 5138; as milliseconds, 1973.
const EPOCH_MS_THRESHOLD: u64 = 100_000_000_000;
/// Epoch numbers at or above this are microseconds (1e14 µs is 1973).
const EPOCH_US_THRESHOLD: u64 = 100_000_000_000_000;
/// Epoch numbers at or above this are nanoseconds (1e17 ns is 1973).
const EPOCH_NS_THRESHOLD: u64 = 100_000_000_000_000_000;

/// How many units of an epoch number at or above [`EPOCH_MS_THRESHOLD`]
/// make a millisecond.
fn epoch_unit_per_ms(int: u64) -> u64 {
    if int >= EPOCH_NS_THRESHOLD {
        1_000_000
    } else if int >= EPOCH_US_THRESHOLD {
        1_000
    } else {
        1
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date `year-month-day`.
///
/// Howard Hinnant's `days_from_civil`: a handful of integer operations, no
/// table and no branch on the month. `month` should be 1..=12 and `day`
/// 1..=31; neither is checked (Feb 30 is Mar 2), so callers validate with
/// `days_in_month` first where that matters. Any input gives some answer
/// without overflow: an `i32` year keeps every product far inside `i64`.
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let year = i64::from(year);
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = i64::from((month % 12 + 9) % 12); // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

fn is_leap_year(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// The number of days in `month` (1..=12) of `year`; 0 for a bad month.
fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// Byte-level helpers. Every access goes through `get`, so a truncated input
// is a `None`, never a panic.
// ---------------------------------------------------------------------------

#[inline]
fn digit(s: &[u8], i: usize) -> Option<u32> {
    let d = s.get(i)?.wrapping_sub(b'0');
    if d < 10 {
        Some(u32::from(d))
    } else {
        None
    }
}

#[inline]
fn two_digits(s: &[u8], i: usize) -> Option<u32> {
    Some(digit(s, i)? * 10 + digit(s, i + 1)?)
}

#[inline]
fn expect(s: &[u8], i: usize, b: u8) -> Option<()> {
    (*s.get(i)? == b).then_some(())
}

/// A run of decimal digits starting at `start` read as a fraction of a
/// second: returns the whole milliseconds (later digits are truncated, not
/// rounded, as jiff does) and the number of digits, which may be zero.
#[inline]
fn fraction_ms(s: &[u8], start: usize) -> (i64, usize) {
    let digits = s
        .get(start..)
        .unwrap_or_default()
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let mut ms = 0i64;
    for k in 0..3 {
        ms = ms * 10
            + digit(s, start + k)
                .filter(|_| k < digits)
                .map_or(0, i64::from);
    }
    (ms, digits)
}

// ---------------------------------------------------------------------------
// RFC 3339
// ---------------------------------------------------------------------------

/// RFC 3339 / ISO 8601 at the start of `s`:
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|z|±HH:MM|±HHMM)`, also with `t` or a
/// space instead of `T`. Fractions of any length (whole milliseconds are
/// kept, the rest truncated). A leap second (`:60`) is read as `:59`, as
/// jiff does. Returns the timestamp and the number of bytes consumed.
pub fn parse_rfc3339_prefix(s: &[u8]) -> Option<(Timestamp, usize)> {
    let ([year, month, day, hour, minute, second], ms, mut i) = date_time_prefix(s, b".")?;
    // Four digits: 0..=9999, so the cast is exact.
    let year = year as i32;
    let offset_secs = match *s.get(i)? {
        b'Z' | b'z' => {
            i += 1;
            0
        }
        sign @ (b'+' | b'-') => {
            let oh = two_digits(s, i + 1)?;
            // `±HH:MM` or `±HHMM` (journald's short-iso writes the latter).
            let (om, len) = if s.get(i + 3) == Some(&b':') {
                (two_digits(s, i + 4)?, 6)
            } else {
                (two_digits(s, i + 3)?, 5)
            };
            i += len;
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let second = second.min(59);
    let secs = days_from_civil(year, month, day) * SECS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    Some((Timestamp(secs * 1000 + ms), i))
}

/// `YYYY-MM-DD(T|t| )HH:MM:SS` and an optional fraction after one of
/// `separators`, at the start of `s`: the fields (year, month, day, hour,
/// minute, second, unchecked), the whole milliseconds of the fraction, and
/// the number of bytes read.
fn date_time_prefix(s: &[u8], separators: &[u8]) -> Option<([u32; 6], i64, usize)> {
    let year = two_digits(s, 0)? * 100 + two_digits(s, 2)?;
    expect(s, 4, b'-')?;
    let month = two_digits(s, 5)?;
    expect(s, 7, b'-')?;
    let day = two_digits(s, 8)?;
    if !matches!(s.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = two_digits(s, 11)?;
    expect(s, 13, b':')?;
    let minute = two_digits(s, 14)?;
    expect(s, 16, b':')?;
    let second = two_digits(s, 17)?;
    let fields = [year, month, day, hour, minute, second];
    match s.get(19) {
        Some(sep) if separators.contains(sep) => {
            let (ms, digits) = fraction_ms(s, 20);
            (digits > 0).then_some((fields, ms, 20 + digits))
        }
        _ => Some((fields, 0, 19)),
    }
}

/// The whole of `s` must be one RFC 3339 timestamp (see
/// [`parse_rfc3339_prefix`]).
pub fn parse_rfc3339(s: &[u8]) -> Option<Timestamp> {
    match parse_rfc3339_prefix(s)? {
        (ts, n) if n == s.len() => Some(ts),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// Epoch numbers
// ---------------------------------------------------------------------------

/// Epoch seconds or milliseconds as a decimal number, integer or with a
/// fraction (`1733230993`, `1733230993.123`, `1733230993123`). Values at or
/// above 1e11 are milliseconds (their fraction, sub-millisecond, is
/// dropped), at or above 1e14 microseconds, at or above 1e17 nanoseconds.
/// No sign, no exponent, digits on both sides of a `.`; a time before 1990
/// or after 2200 is taken as garbage and gives `None`.
pub fn parse_epoch(s: &[u8]) -> Option<Timestamp> {
    let int_digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if int_digits == 0 {
        return None;
    }
    let mut int: u64 = 0;
    for &b in s.get(..int_digits)? {
        int = int.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    let mut frac = 0;
    if int_digits < s.len() {
        expect(s, int_digits, b'.')?;
        let (ms, digits) = fraction_ms(s, int_digits + 1);
        if digits == 0 || int_digits + 1 + digits != s.len() {
            return None;
        }
        frac = ms;
    }
    let ms = if int >= EPOCH_MS_THRESHOLD {
        i64::try_from(int / epoch_unit_per_ms(int)).ok()?
    } else {
        // int < 1e11, so this cannot overflow.
        int as i64 * 1000 + frac
    };
    epoch_in_range(ms)
}

/// [`parse_epoch`]'s rule for a JSON number: at or above 1e11 it is
/// milliseconds, below it seconds; outside 1990..=2200, NaN or infinite →
/// `None`.
pub fn epoch_from_f64(v: f64) -> Option<Timestamp> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v >= EPOCH_NS_THRESHOLD as f64 {
        v / 1e6
    } else if v >= EPOCH_US_THRESHOLD as f64 {
        v / 1e3
    } else if v >= EPOCH_MS_THRESHOLD as f64 {
        v
    } else {
        v * 1000.0
    };
    // Decimal fractions are rarely exact in binary: 1733230993.123 * 1000 is
    // 1733230993122.9998. Snap to the nearest millisecond when within a
    // microsecond of it, otherwise truncate like `parse_epoch` does.
    let nearest = ms.round();
    let ms = if (ms - nearest).abs() < 1e-3 {
        nearest
    } else {
        ms.floor()
    };
    // The range check comes first, so the cast below is exact.
    if !(EPOCH_MIN_MS as f64..=EPOCH_MAX_MS as f64).contains(&ms) {
        return None;
    }
    epoch_in_range(ms as i64)
}

fn epoch_in_range(ms: i64) -> Option<Timestamp> {
    (EPOCH_MIN_MS..=EPOCH_MAX_MS)
        .contains(&ms)
        .then_some(Timestamp(ms))
}

// ---------------------------------------------------------------------------
// Syslog's year-less local times
// ---------------------------------------------------------------------------

/// The largest UTC offset jiff represents is ±25:59:59; 26 hours bounds it.
const MAX_OFFSET_MS: i64 = 26 * 3600 * 1000;

/// Converts syslog's year-less local times (`Mmm dd HH:MM:SS`, the day
/// space-padded, zero-padded or neither, with an optional `.ffffff`
/// fraction) into [`Timestamp`]s.
///
/// # The year
///
/// The line does not say it, so it is inferred from a reference time (the
/// live daemon passes "now", a replay the file's mtime): among the
/// reference's year `y` (in the clock's zone) and its neighbours `y - 1` and
/// `y + 1`, the latest that puts the timestamp no more than one day after the
/// reference. A log written up to the reference therefore reads right across
/// New Year, with a day of slack for clock skew.
///
/// # Speed
///
/// A time-zone conversion through jiff costs far more than parsing the line,
/// so the clock caches the UTC instant of the start of the last local hour it
/// converted, and adds minutes and seconds to it arithmetically: jiff is
/// called once per hour of log. An hour in which the offset changes part-way
/// (a transition not on the hour, as at Lord Howe Island) is detected when it
/// is cached, and each of its lines then goes through jiff. Likewise the
/// reference's year is cached with the UTC span of that year, so moving the
/// reference is free. Local times in a DST gap or fold resolve with jiff's
/// "compatible" rule (a gap moves forward, a fold takes the earlier instant).
#[derive(Clone, Debug)]
pub struct SyslogClock {
    tz: jiff::tz::TimeZone,
    reference: Timestamp,
    /// The reference's local year and the UTC span `[start, end)` in ms in
    /// which that stays the year; `None` until first needed.
    year: Option<YearSpan>,
    /// The last local hour converted.
    hour: Option<CachedHour>,
}

#[derive(Copy, Clone, Debug)]
struct YearSpan {
    year: i32,
    start_ms: i64,
    end_ms: i64,
}

#[derive(Copy, Clone, Debug)]
struct CachedHour {
    /// (year, month, day, hour), local.
    key: (i32, u32, u32, u32),
    base: HourBase,
}

#[derive(Copy, Clone, Debug)]
enum HourBase {
    /// The offset is the same all hour: the UTC seconds of `HH:00:00`.
    Uniform(i64),
    /// The offset changes within the hour: convert each time through jiff.
    Irregular,
    /// jiff cannot represent this hour (out of its range).
    Invalid,
}

/// A parsed syslog local time, before the year is known.
#[derive(Copy, Clone, Debug)]
struct LocalTime {
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    ms: i64,
}

impl LocalTime {
    /// The time read as if the local zone were UTC, in ms. An invalid Feb 29
    /// reads as Mar 1, which is close enough to choose the year.
    fn naive_ms(&self, year: i32) -> i64 {
        let days = days_from_civil(year, self.month, self.day);
        let secs = i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        (days * SECS_PER_DAY + secs) * 1000 + self.ms
    }
}

/// The system's local time zone: `TZ` if set, else `/etc/localtime`.
///
/// `/etc/localtime` is read directly rather than through
/// `jiff::tz::TimeZone::system()`, which resolves it by name in the time
/// zone database and, for that, lists the whole of `/usr/share/zoneinfo`
/// first: a few milliseconds of every start-up. Whatever cannot be read
/// that way is left to jiff.
fn system_time_zone() -> jiff::tz::TimeZone {
    const LOCALTIME: &str = "/etc/localtime";
    if std::env::var_os("TZ").is_some_and(|v| !v.is_empty()) {
        return jiff::tz::TimeZone::system();
    }
    let name = std::fs::read_link(LOCALTIME)
        .ok()
        .and_then(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .split_once("zoneinfo/")
                .map(|(_, name)| name.to_owned())
        })
        .unwrap_or_else(|| "Local".to_owned());
    std::fs::read(LOCALTIME)
        .ok()
        .and_then(|data| jiff::tz::TimeZone::tzif(&name, &data).ok())
        .unwrap_or_else(jiff::tz::TimeZone::system)
}

impl SyslogClock {
    pub fn new(tz: jiff::tz::TimeZone, reference: Timestamp) -> SyslogClock {
        SyslogClock {
            tz,
            reference,
            year: None,
            hour: None,
        }
    }

    /// A clock in the system's local time zone, where syslog daemons write
    /// their times.
    pub fn system(reference: Timestamp) -> SyslogClock {
        SyslogClock::new(system_time_zone(), reference)
    }

    /// Moves the reference that the year is inferred from. Cheap: call it
    /// as often as "now" changes.
    pub fn set_reference(&mut self, reference: Timestamp) {
        self.reference = reference;
    }

    pub fn reference(&self) -> Timestamp {
        self.reference
    }

    pub fn time_zone(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }

    /// Parses `Mmm dd HH:MM:SS[.fraction]` at the start of `s`; returns the
    /// timestamp and the number of bytes consumed. The day may be `05`,
    /// ` 5` or `5`. `None` for anything else, for a date that does not
    /// exist in the inferred year (Feb 29 of a common year), and for a
    /// reference that jiff cannot place in a year.
    pub fn parse_prefix(&mut self, s: &[u8]) -> Option<(Timestamp, usize)> {
        let month = month_from_abbrev(s.get(..3)?)?;
        expect(s, 3, b' ')?;
        // Day: " 5", "05" or "5", then one space.
        let (day, mut i) = match (s.get(4), digit(s, 5)) {
            (Some(b' '), Some(d)) => (d, 6),
            (_, Some(d)) => (digit(s, 4)? * 10 + d, 6),
            (_, None) => (digit(s, 4)?, 5),
        };
        expect(s, i, b' ')?;
        i += 1;
        let hour = two_digits(s, i)?;
        expect(s, i + 2, b':')?;
        let minute = two_digits(s, i + 3)?;
        expect(s, i + 5, b':')?;
        let second = two_digits(s, i + 6)?;
        i += 8;
        let mut ms = 0;
        if s.get(i) == Some(&b'.') {
            let (frac, digits) = fraction_ms(s, i + 1);
            if digits == 0 {
                return None;
            }
            ms = frac;
            i += 1 + digits;
        }
        if day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let local = LocalTime {
            month,
            day,
            hour,
            minute,
            second: second.min(59),
            ms,
        };
        Some((self.resolve(&local)?, i))
    }

    /// Chooses the year and converts to UTC.
    ///
    /// For each candidate year, latest first, the naive time (local read as
    /// UTC) differs from the true instant by the offset, less than 26 hours.
    /// So most candidates are decided by arithmetic alone, and only the one
    /// chosen (or one within 26 hours of the limit) goes through the zone.
    fn resolve(&mut self, local: &LocalTime) -> Option<Timestamp> {
        let year = self.reference_year()?;
        let limit = self.reference.0.checked_add(MS_PER_DAY)?;
        for year in [year + 1, year, year - 1] {
            let naive = local.naive_ms(year);
            if naive - MAX_OFFSET_MS > limit {
                continue; // surely more than a day after the reference
            }
            if local.day > days_in_month(year, local.month) {
                return None; // Feb 29 of a common year
            }
            let ts = self.local_to_utc(year, local)?;
            if ts.0 <= limit {
                return Some(ts);
            }
        }
        None
    }

    /// The reference's year in the clock's zone, from the cache while the
    /// reference stays within that year.
    fn reference_year(&mut self) -> Option<i32> {
        let r = self.reference.0;
        if let Some(span) = self.year {
            if span.start_ms <= r && r < span.end_ms {
                return Some(span.year);
            }
        }
        let ts = jiff::Timestamp::from_millisecond(r).ok()?;
        let year = i32::from(self.tz.to_datetime(ts).year());
        // The span is only cached when jiff can place both ends (not at the
        // edges of its range) and it holds the reference (a fold across New
        // Year could make it not).
        if let (Some(start_ms), Some(end_ms)) = (self.new_year_ms(year), self.new_year_ms(year + 1))
        {
            if start_ms <= r && r < end_ms {
                self.year = Some(YearSpan {
                    year,
                    start_ms,
                    end_ms,
                });
            }
        }
        Some(year)
    }

    /// The UTC instant in ms of local `year-01-01T00:00:00`.
    fn new_year_ms(&self, year: i32) -> Option<i64> {
        let dt = jiff::civil::DateTime::new(i16::try_from(year).ok()?, 1, 1, 0, 0, 0, 0).ok()?;
        Some(self.tz.to_timestamp(dt).ok()?.as_millisecond())
    }

    /// Local `year` + `local` to UTC, through the cached hour.
    fn local_to_utc(&mut self, year: i32, local: &LocalTime) -> Option<Timestamp> {
        let key = (year, local.month, local.day, local.hour);
        let base = match self.hour {
            Some(cached) if cached.key == key => cached.base,
            _ => {
                let base = self.hour_base(year, local);
                self.hour = Some(CachedHour { key, base });
                base
            }
        };
        let secs = match base {
            HourBase::Uniform(start) => start + i64::from(local.minute * 60 + local.second),
            HourBase::Irregular => self.jiff_secs(year, local, local.minute, local.second)?,
            HourBase::Invalid => return None,
        };
        Some(Timestamp(secs.checked_mul(1000)?.checked_add(local.ms)?))
    }

    /// Converts `HH:00:00` and `HH:59:59` of the hour; if they are 3599 s
    /// apart, the hour has one offset throughout.
    fn hour_base(&self, year: i32, local: &LocalTime) -> HourBase {
        let start = self.jiff_secs(year, local, 0, 0);
        let end = self.jiff_secs(year, local, 59, 59);
        match (start, end) {
            (Some(start), Some(end)) if end - start == 3599 => HourBase::Uniform(start),
            (Some(_), Some(_)) => HourBase::Irregular,
            _ => HourBase::Invalid,
        }
    }

    /// One local time to UTC seconds through jiff ("compatible" rule).
    fn jiff_secs(&self, year: i32, local: &LocalTime, minute: u32, second: u32) -> Option<i64> {
        let narrow = |v: u32| i8::try_from(v).ok();
        let dt = jiff::civil::DateTime::new(
            i16::try_from(year).ok()?,
            narrow(local.month)?,
            narrow(local.day)?,
            narrow(local.hour)?,
            narrow(minute)?,
            narrow(second)?,
            0,
        )
        .ok()?;
        Some(self.tz.to_timestamp(dt).ok()?.as_second())
    }
}

/// The common log format's time, `10/Oct/2024:13:55:36 +0000` (nginx,
/// Apache, morgan), or Werkzeug's `10/Oct/2024 13:55:36`, which has no
/// offset and is local time in `clock`'s zone.
pub fn parse_clf(s: &[u8], clock: &SyslogClock) -> Option<Timestamp> {
    if s.len() < 20 || s.get(2) != Some(&b'/') || s.get(6) != Some(&b'/') {
        return None;
    }
    let day = two_digits(s, 0)?;
    let month = month_from_abbrev(s.get(3..6)?)?;
    let y = s.get(7..11)?;
    if !y.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = y.iter().fold(0i32, |a, &b| a * 10 + i32::from(b - b'0'));
    let sep = *s.get(11)?;
    let (hour, minute, second) = (two_digits(s, 12)?, two_digits(s, 15)?, two_digits(s, 18)?);
    if s.get(14) != Some(&b':')
        || s.get(17) != Some(&b':')
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let second = second.min(59);
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    match (sep, s.len()) {
        (b':', 26) => {
            let sign = match s[21] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if s[20] != b' ' {
                return None;
            }
            let (oh, om) = (two_digits(s, 22)?, two_digits(s, 24)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let local = days_from_civil(year, month, day) * 86_400
                + i64::from(hour * 3600 + minute * 60 + second);
            Some(Timestamp::from_secs(
                local - sign * i64::from(oh * 3600 + om * 60),
            ))
        }
        (b' ', 20) => local_time(
            clock,
            [u32::try_from(year).ok()?, month, day, hour, minute, second],
        ),
        _ => None,
    }
}

/// A time captured from a log line in any format a rule may meet:
/// RFC 3339, a date and time without offset (`2024-05-01 12:34:56,789`,
/// as Python's logging writes `asctime`; read in the local time zone, as
/// syslog times are), the common log format (with or without offset),
/// year-less syslog, or epoch seconds, milliseconds, microseconds or
/// nanoseconds. The whole capture must be one time; anything else is
/// `None`.
pub fn parse_log_time(s: &[u8], clock: &mut SyslogClock) -> Option<Timestamp> {
    let first = *s.first()?;
    if first.is_ascii_digit() {
        if let Some(t) = parse_rfc3339(s) {
            return Some(t);
        }
        if s.get(2) == Some(&b'/') {
            return parse_clf(s, clock);
        }
        if s.get(4) == Some(&b'-') {
            return parse_local_datetime(s, clock);
        }
        return parse_epoch(s);
    }
    match clock.parse_prefix(s) {
        Some((t, n)) if n == s.len() => Some(t),
        _ => None,
    }
}

/// `YYYY-MM-DD[T ]HH:MM:SS[(.|,)fraction]` with no offset, the whole of
/// `s`, in the clock's time zone (in a DST gap or fold, as the
/// "compatible" rule of RFC 5545 and `jiff` says: the earlier of two).
fn parse_local_datetime(s: &[u8], clock: &SyslogClock) -> Option<Timestamp> {
    let (fields, ms, end) = date_time_prefix(s, b".,")?;
    if end != s.len() {
        return None;
    }
    let t = local_time(clock, fields)?;
    Some(Timestamp::from_millis(t.as_millis().checked_add(ms)?))
}

/// A civil date and time (year, month, day, hour, minute, second) in the
/// clock's time zone; `None` if there is no such time.
fn local_time(
    clock: &SyslogClock,
    [year, month, day, hour, minute, second]: [u32; 6],
) -> Option<Timestamp> {
    let dt = jiff::civil::DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        0,
    )
    .ok()?;
    let ts = clock.time_zone().to_timestamp(dt).ok()?;
    Some(Timestamp::from_secs(ts.as_second()))
}

/// `Jan`..`Dec`, exactly (case-sensitive, as syslog writes them).
#[inline]
fn month_from_abbrev(m: &[u8]) -> Option<u32> {
    Some(match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    #[test]
    fn dates_and_times_without_an_offset_are_local() {
        let mut clock = SyslogClock::new(TimeZone::fixed(jiff::tz::offset(2)), Timestamp::now());
        let mut at = |s: &str| parse_log_time(s.as_bytes(), &mut clock).map(|t| t.to_string());
        // Python logging's asctime, and its ISO-ish relatives.
        let want = Some("2024-05-01T10:34:56.789Z".to_owned());
        assert_eq!(at("2024-05-01 12:34:56,789"), want);
        assert_eq!(at("2024-05-01 12:34:56.789"), want);
        assert_eq!(at("2024-05-01T12:34:56.789123"), want);
        assert_eq!(
            at("2024-05-01T12:34:56"),
            Some("2024-05-01T10:34:56Z".to_owned())
        );
        // An offset still wins; anything after the time is no time.
        assert_eq!(
            at("2024-05-01 12:34:56+00:00"),
            Some("2024-05-01T12:34:56Z".to_owned())
        );
        for bad in [
            "2024-05-01 12:34:56,",
            "2024-05-01 12:34:56 ",
            "2024-05-01 12:34:56,789x",
            "2024-05-01_12:34:56",
            "2024-13-01 12:34:56",
            "2024-05-01 24:00:00",
            "2024-05-01",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_numbers_in_every_unit() {
        let ms = Some(Timestamp::from_millis(1_714_566_896_789));
        assert_eq!(parse_epoch(b"1714566896.789"), ms);
        assert_eq!(parse_epoch(b"1714566896789"), ms);
        assert_eq!(parse_epoch(b"1714566896789123"), ms);
        assert_eq!(parse_epoch(b"1714566896789123456"), ms);
        assert_eq!(epoch_from_f64(1_714_566_896_789_123.0), ms);
        assert_eq!(epoch_from_f64(1.714_566_896_789_123_5e18), ms);
        // Past 2200 in any unit is garbage.
        assert_eq!(parse_epoch(b"99999999999999999999"), None);
        assert_eq!(parse_epoch(b"9999999999999999"), None);
    }

    #[test]
    fn common_log_format_times() {
        let clock = SyslogClock::new(TimeZone::fixed(jiff::tz::offset(2)), Timestamp::now());
        let t = |s: &str| parse_clf(s.as_bytes(), &clock).map(|t| t.to_string());
        assert_eq!(
            t("10/Oct/2024:13:55:36 +0000").as_deref(),
            Some("2024-10-10T13:55:36Z")
        );
        assert_eq!(
            t("10/Oct/2024:13:55:36 -0700").as_deref(),
            Some("2024-10-10T20:55:36Z")
        );
        assert_eq!(
            t("03/Dec/2026:14:55:36 +0100").as_deref(),
            Some("2026-12-03T13:55:36Z")
        );
        // Werkzeug: local time in the clock's zone (UTC+2 here).
        assert_eq!(
            t("03/Dec/2026 13:55:36").as_deref(),
            Some("2026-12-03T11:55:36Z")
        );
        for bad in [
            "31/Feb/2024:00:00:00 +0000",
            "10/Foo/2024:13:55:36 +0000",
            "10/Oct/2024:13:55:36",
            "10/Oct/2024:25:00:00 +0000",
            "10/Oct/2024:13:55:36 +0000 ",
            "1/Oct/2024:13:55:36 +0000",
            "",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
        let s = b"10/Oct/2024:13:55:36 +0000";
        for n in 0..s.len() {
            assert_eq!(parse_clf(&s[..n], &clock), None);
        }
    }

    #[test]
    fn log_times_in_every_format() {
        let mut clock = SyslogClock::new(TimeZone::UTC, Timestamp::from_secs(1_733_230_993));
        let mut t = |s: &str| parse_log_time(s.as_bytes(), &mut clock).map(|t| t.to_string());
        assert_eq!(
            t("2024-05-01T12:34:56Z").as_deref(),
            Some("2024-05-01T12:34:56Z")
        );
        assert_eq!(
            t("10/Oct/2024:13:55:36 +0000").as_deref(),
            Some("2024-10-10T13:55:36Z")
        );
        assert_eq!(t("1714566896").as_deref(), Some("2024-05-01T12:34:56Z"));
        assert_eq!(
            t("1714566896789").as_deref(),
            Some("2024-05-01T12:34:56.789Z")
        );
        assert_eq!(
            t("Dec  3 12:00:00").as_deref(),
            Some("2024-12-03T12:00:00Z")
        );
        assert_eq!(t("Dec  3 12:00:00 trailing"), None);
        assert_eq!(t("yesterday"), None);
    }

    /// The instant that jiff reads from `s` (a test oracle, in ms, floored).
    fn jiff_ms(s: &str) -> i64 {
        let ts: jiff::Timestamp = s.parse().unwrap();
        i64::try_from(ts.as_nanosecond().div_euclid(1_000_000)).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::from_millis(jiff_ms(s))
    }

    /// Berlin from the tz database when the machine has it, otherwise the
    /// same rules as a POSIX TZ string, so the DST tests run anywhere.
    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin")
            .or_else(|_| TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3"))
            .unwrap()
    }

    /// Lord Howe Island: DST is half an hour, and both transitions fall at
    /// half past, inside an hour.
    fn lord_howe() -> TimeZone {
        TimeZone::get("Australia/Lord_Howe")
            .or_else(|_| TimeZone::posix("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0"))
            .unwrap()
    }

    /// What jiff itself makes of a local time in `tz` ("compatible").
    fn jiff_local(tz: &TimeZone, y: i16, mo: i8, d: i8, h: i8, mi: i8, s: i8) -> Timestamp {
        let dt = jiff::civil::DateTime::new(y, mo, d, h, mi, s, 0).unwrap();
        Timestamp::from_millis(tz.to_timestamp(dt).unwrap().as_millisecond())
    }

    const UTC_PLUS_2: &str = "2024-05-01T10:34:56Z";

    // ---- calendar ----

    #[test]
    fn days_from_civil_known_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }

    #[test]
    fn days_from_civil_agrees_with_jiff() {
        let epoch = jiff::civil::date(1970, 1, 1);
        for year in (1..=9999).step_by(7).chain(1968..=2032) {
            for month in 1..=12u32 {
                for day in [1, 15, days_in_month(year, month)] {
                    let date = jiff::civil::Date::new(year as i16, month as i8, day as i8).unwrap();
                    let want = (date - epoch).get_days() as i64;
                    assert_eq!(days_from_civil(year, month, day), want, "{date}");
                }
            }
        }
    }

    #[test]
    fn days_from_civil_never_overflows() {
        for year in [i32::MIN, i32::MIN + 1, -1, 0, i32::MAX] {
            for month in [0, 1, 2, 3, 12, 13, u32::MAX] {
                for day in [0, 1, 31, u32::MAX] {
                    let _ = days_from_civil(year, month, day);
                }
            }
        }
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024) && is_leap_year(2000) && is_leap_year(0));
        assert!(!is_leap_year(2025) && !is_leap_year(1900) && !is_leap_year(2100));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2025, 2), 28);
        assert_eq!(days_in_month(2025, 13), 0);
    }

    // ---- RFC 3339 ----

    #[test]
    fn rfc3339_offsets() {
        let want = at(UTC_PLUS_2);
        for s in [
            "2024-05-01T12:34:56+02:00",
            "2024-05-01T12:34:56+0200",
            "2024-05-01T10:34:56Z",
            "2024-05-01T10:34:56z",
            "2024-05-01t10:34:56Z",
            "2024-05-01 10:34:56Z",
            "2024-05-01 12:34:56+02:00",
            "2024-05-01T10:34:56+00:00",
            "2024-05-01T10:34:56-00:00",
            "2024-05-01T05:04:56-05:30",
            "2024-05-01T05:04:56-0530",
            "2024-04-30T23:34:56-11:00",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), Some(want), "{s}");
            assert_eq!(
                parse_rfc3339_prefix(s.as_bytes()),
                Some((want, s.len())),
                "{s}"
            );
        }
    }

    #[test]
    fn rfc3339_fractions() {
        let base = at(UTC_PLUS_2).as_millis();
        for (frac, ms) in [
            (".1", 100),
            (".12", 120),
            (".123", 123),
            (".1234", 123),
            (".123456", 123),
            (".999999999", 999),
            (".123456789012345", 123),
            (".000", 0),
            (".0009", 0),
        ] {
            for offset in ["+02:00", "+0200"] {
                let s = format!("2024-05-01T12:34:56{frac}{offset}");
                let got = parse_rfc3339(s.as_bytes());
                assert_eq!(got, Some(Timestamp::from_millis(base + ms)), "{s}");
            }
        }
    }

    #[test]
    fn rfc3339_prefix_stops_at_the_offset() {
        let line = b"2024-05-01T12:34:56.123456+02:00 web1 sshd[1234]: x";
        let (ts, n) = parse_rfc3339_prefix(line).unwrap();
        assert_eq!(n, 32);
        assert_eq!(ts, at("2024-05-01T10:34:56.123Z"));
        assert_eq!(parse_rfc3339(line), None, "trailing text");
    }

    #[test]
    fn rfc3339_calendar_edges() {
        assert_eq!(
            parse_rfc3339(b"2024-02-29T00:00:00Z"),
            Some(at("2024-02-29T00:00:00Z"))
        );
        assert_eq!(
            parse_rfc3339(b"2000-02-29T00:00:00Z"),
            Some(at("2000-02-29T00:00:00Z"))
        );
        assert_eq!(
            parse_rfc3339(b"1969-12-31T23:59:59.5Z"),
            Some(Timestamp::from_millis(-500))
        );
        assert_eq!(
            parse_rfc3339(b"0000-01-01T00:00:00Z"),
            Some(Timestamp::from_secs(-62_167_219_200))
        );
        assert_eq!(
            parse_rfc3339(b"9999-12-31T23:59:59Z"),
            Some(Timestamp::from_secs(253_402_300_799))
        );
        // A leap second reads as :59, as jiff does.
        assert_eq!(
            parse_rfc3339(b"2016-12-31T23:59:60Z"),
            Some(at("2016-12-31T23:59:59Z"))
        );
        // New Year across an offset.
        assert_eq!(
            parse_rfc3339(b"2026-01-01T00:30:00+01:00"),
            Some(at("2025-12-31T23:30:00Z"))
        );
    }

    #[test]
    fn rfc3339_rejects_garbage() {
        for s in [
            "",
            "2024",
            "2024-05-01",
            "2024-05-01T12:34:56",    // no offset
            "2024-05-01T12:34:56+02", // ±HH alone
            "2024-05-01T12:34:56+2:00",
            "2024-05-01T12:34:56+02:0",
            "2024-05-01T12:34:56+020",
            "2024-05-01T12:34:56+24:00",
            "2024-05-01T12:34:56+02:60",
            "2024-05-01T12:34:56.Z", // '.' without digits
            "2024-05-01T12:34:56,123Z",
            "2024-05-01X12:34:56Z",
            "2024-05-01T12:34Z",
            "2024-13-01T12:34:56Z",
            "2024-00-01T12:34:56Z",
            "2024-05-00T12:34:56Z",
            "2024-04-31T12:34:56Z",
            "2023-02-29T12:34:56Z",
            "1900-02-29T12:34:56Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:56Z",
            "2024-05-01T12:34:61Z",
            "+2024-05-01T12:34:56Z",
            "-2024-05-01T12:34:56Z",
            "20240501T123456Z",
            "2024/05/01T12:34:56Z",
            "2024-05-01T12:34:56Z ",
            " 2024-05-01T12:34:56Z",
            "２０２４-05-01T12:34:56Z",
        ] {
            assert_eq!(parse_rfc3339(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_truncated_at_every_length() {
        for s in [
            "2024-05-01T12:34:56.123456+02:00",
            "2024-05-01T12:34:56.123456+0200",
            "2024-05-01 12:34:56Z",
        ] {
            let b = s.as_bytes();
            for n in 0..b.len() {
                assert_eq!(parse_rfc3339(&b[..n]), None, "{:?}", &s[..n]);
                let _ = parse_rfc3339_prefix(&b[..n]);
            }
            assert!(parse_rfc3339(b).is_some());
        }
    }

    // ---- epoch ----

    #[test]
    fn epoch_seconds_and_millis() {
        let secs = Timestamp::from_secs(1_733_230_993);
        assert_eq!(parse_epoch(b"1733230993"), Some(secs));
        assert_eq!(
            parse_epoch(b"1733230993.123"),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(
            parse_epoch(b"1733230993.1"),
            Some(Timestamp::from_millis(1_733_230_993_100))
        );
        assert_eq!(
            parse_epoch(b"1733230993.123999999"),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(
            parse_epoch(b"1733230993123"),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(
            parse_epoch(b"1733230993123.9"),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(parse_epoch(b"0001733230993"), Some(secs));
        // The range: 1990 ..= 2200.
        assert_eq!(
            parse_epoch(b"631152000"),
            Some(Timestamp::from_secs(631_152_000))
        );
        assert_eq!(parse_epoch(b"631151999"), None);
        assert_eq!(
            parse_epoch(b"7258118400"),
            Some(Timestamp::from_secs(7_258_118_400))
        );
        assert_eq!(parse_epoch(b"7258118401"), None);
        assert_eq!(parse_epoch(b"99999999999"), None); // seconds: year 5138
        assert_eq!(parse_epoch(b"100000000000"), None); // ms: 1973
        assert_eq!(
            parse_epoch(b"7258118400000"),
            Some(Timestamp::from_secs(7_258_118_400))
        );
        assert_eq!(parse_epoch(b"7258118400001"), None);
    }

    #[test]
    fn epoch_rejects_garbage() {
        for s in [
            "",
            ".",
            "1733230993.",
            ".123",
            "+1733230993",
            "-1733230993",
            "1733230993e0",
            "1.733230993e9",
            "1733230993 ",
            " 1733230993",
            "1733230993.12.3",
            "0x6750",
            "1733230993,5",
            "0",
            "99999999999999999999999999999",
            "NaN",
            "inf",
        ] {
            assert_eq!(parse_epoch(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn epoch_from_f64_follows_the_same_rule() {
        assert_eq!(
            epoch_from_f64(1_733_230_993.0),
            Some(Timestamp::from_secs(1_733_230_993))
        );
        assert_eq!(
            epoch_from_f64(1_733_230_993.123),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(
            epoch_from_f64(1_733_230_993.123_9),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        assert_eq!(
            epoch_from_f64(1_733_230_993_123.0),
            Some(Timestamp::from_millis(1_733_230_993_123))
        );
        for v in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            99_999_999_999.0,
            1e11,
            1e300,
        ] {
            assert_eq!(epoch_from_f64(v), None, "{v}");
        }
    }

    // ---- syslog ----

    fn clock(tz: TimeZone, reference: &str) -> SyslogClock {
        SyslogClock::new(tz, at(reference))
    }

    fn parse(c: &mut SyslogClock, s: &str) -> Option<Timestamp> {
        match c.parse_prefix(s.as_bytes()) {
            Some((ts, n)) => {
                assert_eq!(n, s.len(), "{s:?} consumed {n}");
                Some(ts)
            }
            None => None,
        }
    }

    #[test]
    fn syslog_day_padding_and_fractions() {
        let mut c = clock(TimeZone::UTC, "2025-06-01T00:00:00Z");
        let want = Some(at("2025-03-05T06:25:01Z"));
        assert_eq!(parse(&mut c, "Mar  5 06:25:01"), want);
        assert_eq!(parse(&mut c, "Mar 05 06:25:01"), want);
        assert_eq!(parse(&mut c, "Mar 5 06:25:01"), want);
        assert_eq!(
            parse(&mut c, "Mar 05 06:25:01.123456"),
            Some(at("2025-03-05T06:25:01.123Z"))
        );
        assert_eq!(
            parse(&mut c, "Mar 05 06:25:01.9"),
            Some(at("2025-03-05T06:25:01.900Z"))
        );
        assert_eq!(
            parse(&mut c, "Dec 31 23:59:59"),
            Some(at("2024-12-31T23:59:59Z"))
        );
        let line = b"Mar  5 06:25:01 web1 sshd[1234]: Failed password";
        assert_eq!(c.parse_prefix(line), Some((at("2025-03-05T06:25:01Z"), 15)));
    }

    #[test]
    fn syslog_months() {
        let mut c = clock(TimeZone::UTC, "2025-12-31T12:00:00Z");
        let names = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for (i, m) in names.iter().enumerate() {
            let want = at(&format!("2025-{:02}-10T01:02:03Z", i + 1));
            assert_eq!(
                parse(&mut c, &format!("{m} 10 01:02:03")),
                Some(want),
                "{m}"
            );
        }
        for m in ["jan", "JAN", "Jan.", "Sept", "Foo", "Ja", "Mär"] {
            assert_eq!(parse(&mut c, &format!("{m} 10 01:02:03")), None, "{m}");
        }
    }

    #[test]
    fn syslog_new_year_both_ways() {
        let mut c = clock(TimeZone::UTC, "2026-01-02T00:00:00Z");
        assert_eq!(
            parse(&mut c, "Dec 31 23:59:59"),
            Some(at("2025-12-31T23:59:59Z"))
        );
        assert_eq!(
            parse(&mut c, "Jan  1 00:00:01"),
            Some(at("2026-01-01T00:00:01Z"))
        );
        // A day of slack after the reference, then it is last year's.
        assert_eq!(
            parse(&mut c, "Jan  3 00:00:00"),
            Some(at("2026-01-03T00:00:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Jan  3 00:00:00.001"),
            Some(at("2025-01-03T00:00:00.001Z"))
        );

        c.set_reference(at("2025-12-31T23:59:58Z"));
        assert_eq!(
            parse(&mut c, "Jan  1 00:00:01"),
            Some(at("2026-01-01T00:00:01Z"))
        );
        assert_eq!(
            parse(&mut c, "Dec 31 23:59:57"),
            Some(at("2025-12-31T23:59:57Z"))
        );
        assert_eq!(
            parse(&mut c, "Jan  1 23:59:58"),
            Some(at("2026-01-01T23:59:58Z"))
        );
        assert_eq!(
            parse(&mut c, "Jan  1 23:59:59"),
            Some(at("2025-01-01T23:59:59Z"))
        );
    }

    #[test]
    fn syslog_new_year_in_a_zone() {
        // The reference's year is its local year: 2025-12-31T23:30Z is
        // already 2026 in Berlin.
        let mut c = clock(berlin(), "2025-12-31T23:30:00Z");
        assert_eq!(
            parse(&mut c, "Jan  1 00:20:00"),
            Some(at("2025-12-31T23:20:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Dec 31 23:50:00"),
            Some(at("2025-12-31T22:50:00Z"))
        );
        // Moving the reference back across New Year moves the year back.
        c.set_reference(at("2025-12-31T22:30:00Z"));
        assert_eq!(
            parse(&mut c, "Jan  1 23:20:00"),
            Some(at("2026-01-01T22:20:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Jan  1 23:40:00"),
            Some(at("2025-01-01T22:40:00Z"))
        );
        c.set_reference(at("2027-03-01T00:00:00Z"));
        assert_eq!(
            parse(&mut c, "Jan  1 23:40:00"),
            Some(at("2027-01-01T22:40:00Z"))
        );
    }

    #[test]
    fn syslog_leap_day() {
        let mut c = clock(TimeZone::UTC, "2024-03-10T00:00:00Z");
        assert_eq!(
            parse(&mut c, "Feb 29 12:00:00"),
            Some(at("2024-02-29T12:00:00Z"))
        );
        c.set_reference(at("2025-03-10T00:00:00Z"));
        assert_eq!(parse(&mut c, "Feb 29 12:00:00"), None);
        assert_eq!(parse(&mut c, "Feb 30 12:00:00"), None);
        assert_eq!(parse(&mut c, "Apr 31 12:00:00"), None);
        assert_eq!(parse(&mut c, "Jan 32 12:00:00"), None);
        assert_eq!(parse(&mut c, "Jan  0 12:00:00"), None);
        assert_eq!(parse(&mut c, "Jan 00 12:00:00"), None);
    }

    #[test]
    fn syslog_dst_berlin() {
        let mut c = clock(berlin(), "2025-12-01T00:00:00Z");
        // Winter and summer.
        assert_eq!(
            parse(&mut c, "Jan 15 12:00:00"),
            Some(at("2025-01-15T11:00:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Jul 15 12:00:00"),
            Some(at("2025-07-15T10:00:00Z"))
        );
        // Spring forward, 2025-03-30 02:00 → 03:00: the gap moves forward.
        assert_eq!(
            parse(&mut c, "Mar 30 01:59:59"),
            Some(at("2025-03-30T00:59:59Z"))
        );
        assert_eq!(
            parse(&mut c, "Mar 30 02:30:00"),
            Some(at("2025-03-30T01:30:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Mar 30 03:00:00"),
            Some(at("2025-03-30T01:00:00Z"))
        );
        // Fall back, 2025-10-26 03:00 → 02:00: the fold takes the earlier.
        assert_eq!(
            parse(&mut c, "Oct 26 01:59:59"),
            Some(at("2025-10-25T23:59:59Z"))
        );
        assert_eq!(
            parse(&mut c, "Oct 26 02:30:00"),
            Some(at("2025-10-26T00:30:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Oct 26 03:00:00"),
            Some(at("2025-10-26T02:00:00Z"))
        );
    }

    /// Every minute (and some seconds) of the days around the transitions,
    /// through the cache, against jiff directly.
    fn agrees_with_jiff_around(tz: TimeZone, reference: &str, days: &[(i16, i8, i8)]) {
        let mut c = clock(tz.clone(), reference);
        let names = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for &(y, mo, d) in days {
            for h in 0..24 {
                for mi in 0..60 {
                    for s in [0, 1, 59] {
                        let line =
                            format!("{} {d:2} {h:02}:{mi:02}:{s:02}", names[mo as usize - 1]);
                        let want = jiff_local(&tz, y, mo, d, h, mi, s);
                        assert_eq!(parse(&mut c, &line), Some(want), "{line}");
                    }
                }
            }
        }
    }

    #[test]
    fn syslog_cache_agrees_with_jiff_berlin() {
        agrees_with_jiff_around(
            berlin(),
            "2025-12-01T00:00:00Z",
            &[
                (2025, 3, 29),
                (2025, 3, 30),
                (2025, 3, 31),
                (2025, 10, 26),
                (2025, 10, 27),
            ],
        );
    }

    #[test]
    fn syslog_cache_agrees_with_jiff_lord_howe() {
        // 2025-04-06 02:00 → 01:30 and 2025-10-05 02:00 → 02:30: the offset
        // changes inside an hour, so those hours go through jiff per line.
        agrees_with_jiff_around(
            lord_howe(),
            "2025-12-01T00:00:00Z",
            &[(2025, 4, 6), (2025, 10, 5)],
        );
        let mut c = clock(lord_howe(), "2025-12-01T00:00:00Z");
        assert_eq!(
            parse(&mut c, "Oct  5 02:15:00"),
            Some(at("2025-10-04T15:45:00Z"))
        );
        assert_eq!(
            parse(&mut c, "Oct  5 02:45:00"),
            Some(at("2025-10-04T15:45:00Z"))
        );
    }

    #[test]
    fn syslog_rejects_garbage() {
        let mut c = clock(TimeZone::UTC, "2025-06-01T00:00:00Z");
        for s in [
            "",
            "Mar",
            "Mar ",
            "Mar  ",
            "Mar   5 06:25:01",
            "Mar  5  06:25:01",
            "Mar 5 6:25:01",
            "Mar  5 06:25",
            "Mar  5 06:25:1",
            "Mar  5 06-25-01",
            "Mar  5 24:00:00",
            "Mar  5 06:60:00",
            "Mar  5 06:25:61",
            "Mar  5 06:25:01.",
            "Mar 123 06:25:01",
            "Mar x5 06:25:01",
            "Mar\t5 06:25:01",
            " Mar  5 06:25:01",
            "2025-03-05T06:25:01Z",
        ] {
            assert_eq!(c.parse_prefix(s.as_bytes()), None, "{s:?}");
        }
    }

    #[test]
    fn syslog_truncated_at_every_length() {
        let mut c = clock(berlin(), "2025-06-01T00:00:00Z");
        for s in [
            "Mar  5 06:25:01.123456",
            "Mar 05 06:25:01",
            "Mar 5 06:25:01",
        ] {
            let b = s.as_bytes();
            for n in 0..b.len() {
                // Only a prefix that ends a complete time may parse: the
                // seconds, or a fraction with at least one digit.
                let seconds_end = s.find('.').unwrap_or(s.len());
                if let Some((_, k)) = c.parse_prefix(&b[..n]) {
                    assert_eq!(k, n, "{:?}", &s[..n]);
                    assert!(n == seconds_end || n > seconds_end + 1, "{:?}", &s[..n]);
                }
            }
            assert!(c.parse_prefix(b).is_some());
        }
    }

    #[test]
    fn syslog_absurd_references() {
        for r in [
            i64::MIN,
            i64::MAX,
            -400_000_000_000_000,
            400_000_000_000_000,
        ] {
            let mut c = SyslogClock::new(TimeZone::UTC, Timestamp::from_millis(r));
            assert_eq!(c.parse_prefix(b"Mar  5 06:25:01"), None, "{r}");
        }
        // At the very edge of jiff's range the neighbours' years fail, the
        // reference's own still works.
        let mut c = clock(TimeZone::UTC, "9999-06-01T00:00:00Z");
        assert_eq!(
            parse(&mut c, "Mar  5 06:25:01"),
            Some(at("9999-03-05T06:25:01Z"))
        );
    }

    // ---- properties ----

    fn rfc3339_strategy() -> impl Strategy<Value = String> {
        (
            1i32..=9998,
            1u32..=12,
            1u32..=31,
            (0u32..24, 0u32..60, 0u32..60),
            prop::sample::select(vec!["T", "t", " "]),
            "(\\.[0-9]{1,9})?",
            prop_oneof![
                Just("Z".to_string()),
                Just("z".to_string()),
                (prop::bool::ANY, 0u32..24, 0u32..60, prop::bool::ANY).prop_map(
                    |(neg, h, m, colon)| {
                        format!(
                            "{}{h:02}{}{m:02}",
                            if neg { '-' } else { '+' },
                            if colon { ":" } else { "" }
                        )
                    }
                ),
            ],
        )
            .prop_map(|(y, mo, d, (h, mi, s), sep, frac, off)| {
                let d = d.min(days_in_month(y, mo));
                format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}{frac}{off}")
            })
    }

    proptest! {
        #[test]
        fn rfc3339_agrees_with_jiff(s in rfc3339_strategy()) {
            let want = Timestamp::from_millis(jiff_ms(&s));
            prop_assert_eq!(parse_rfc3339(s.as_bytes()), Some(want));
        }

        #[test]
        fn syslog_agrees_with_jiff(
            secs in 1_000_000_000i64..4_000_000_000,
            back in 0i64..300 * 86_400,
            frac in 0u32..1000,
        ) {
            // A local time up to 300 days before the reference reads back.
            let tz = berlin();
            let reference = jiff::Timestamp::from_second(secs).unwrap();
            let event = jiff::Timestamp::new(secs - back, frac as i32 * 1_000_000).unwrap();
            let local = tz.to_datetime(event);
            let line = local.strftime("%b %e %H:%M:%S%.3f").to_string();
            let mut c = SyslogClock::new(tz.clone(), Timestamp::from_millis(reference.as_millisecond()));
            let want = tz.to_timestamp(local).unwrap().as_millisecond();
            prop_assert_eq!(parse(&mut c, &line), Some(Timestamp::from_millis(want)));
        }

        #[test]
        fn no_input_panics(s in prop::collection::vec(any::<u8>(), 0..48), r in any::<i64>()) {
            let _ = parse_rfc3339_prefix(&s);
            let _ = parse_rfc3339(&s);
            let _ = parse_epoch(&s);
            let mut c = SyslogClock::new(TimeZone::UTC, Timestamp::from_millis(r));
            let _ = c.parse_prefix(&s);
            c.set_reference(Timestamp::now());
            if let Some((_, n)) = c.parse_prefix(&s) {
                prop_assert!(n <= s.len());
            }
        }

        #[test]
        fn near_misses_do_not_panic(
            s in "[0-9JFMASOND][0-9a-z :TZ.+-]{0,40}",
            v in any::<f64>(),
        ) {
            let _ = parse_rfc3339_prefix(s.as_bytes());
            let _ = parse_epoch(s.as_bytes());
            let _ = epoch_from_f64(v);
            let mut c = SyslogClock::new(TimeZone::UTC, Timestamp::now());
            let _ = c.parse_prefix(s.as_bytes());
        }
    }
}
