//! When a flow runs next: `every` counts from the last due time (so a run that takes a while
//! does not drift the schedule), `cron` is read in the partner's timezone by `croner`, through
//! a `chrono` time zone backed by jiff's tz database so daylight-saving changes are handled as
//! cron users expect (a time in the spring gap runs once at the gap's end; a time in the
//! autumn fold runs once, at its first occurrence).

use std::time::Duration;

use chrono::{
    DateTime, FixedOffset, MappedLocalTime, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc,
};

use crate::config::Schedule;

/// A partner's time zone as `chrono` sees it, for `croner`.
#[derive(Clone, Debug)]
pub struct Zone(pub jiff::tz::TimeZone);

/// An offset that remembers its zone.
#[derive(Clone, Debug)]
pub struct ZoneOffset {
    zone: jiff::tz::TimeZone,
    fixed: FixedOffset,
}

impl Offset for ZoneOffset {
    fn fix(&self) -> FixedOffset {
        self.fixed
    }
}

fn fixed(offset: jiff::tz::Offset) -> FixedOffset {
    FixedOffset::east_opt(offset.seconds()).unwrap_or_else(|| Utc.fix())
}

impl Zone {
    fn offset(&self, o: jiff::tz::Offset) -> ZoneOffset {
        ZoneOffset {
            zone: self.0.clone(),
            fixed: fixed(o),
        }
    }
}

impl TimeZone for Zone {
    type Offset = ZoneOffset;

    fn from_offset(offset: &ZoneOffset) -> Zone {
        Zone(offset.zone.clone())
    }

    fn offset_from_local_date(&self, local: &NaiveDate) -> MappedLocalTime<ZoneOffset> {
        match local.and_hms_opt(0, 0, 0) {
            Some(dt) => self.offset_from_local_datetime(&dt),
            None => MappedLocalTime::None,
        }
    }

    fn offset_from_local_datetime(&self, local: &NaiveDateTime) -> MappedLocalTime<ZoneOffset> {
        use chrono::{Datelike, Timelike};
        let Ok(civil) = jiff::civil::DateTime::new(
            local.year() as i16,
            local.month() as i8,
            local.day() as i8,
            local.hour() as i8,
            local.minute() as i8,
            local.second() as i8,
            0,
        ) else {
            return MappedLocalTime::None;
        };
        match self.0.to_ambiguous_timestamp(civil).offset() {
            jiff::tz::AmbiguousOffset::Unambiguous { offset } => {
                MappedLocalTime::Single(self.offset(offset))
            }
            jiff::tz::AmbiguousOffset::Gap { .. } => MappedLocalTime::None,
            jiff::tz::AmbiguousOffset::Fold { before, after } => {
                MappedLocalTime::Ambiguous(self.offset(before), self.offset(after))
            }
        }
    }

    fn offset_from_utc_date(&self, utc: &NaiveDate) -> ZoneOffset {
        self.offset_from_utc_datetime(&utc.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> ZoneOffset {
        let ts = jiff::Timestamp::from_second(utc.and_utc().timestamp())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        self.offset(self.0.to_offset(ts))
    }
}

/// The first time after `after_ms` (unix ms) the schedule is due, `None` when never (a cron
/// that matches no date).
pub fn next_after(schedule: &Schedule, zone: &jiff::tz::TimeZone, after_ms: i64) -> Option<i64> {
    match schedule {
        Schedule::Every(every) => {
            Some(after_ms.saturating_add(i64::try_from(every.as_millis()).unwrap_or(i64::MAX)))
        }
        Schedule::Cron(cron) => {
            let start =
                DateTime::from_timestamp_millis(after_ms)?.with_timezone(&Zone(zone.clone()));
            cron.find_next_occurrence(&start, false)
                .ok()
                .map(|t| t.timestamp_millis())
        }
    }
}

/// How many due times of the schedule fall in (`from_ms`, `to_ms`]: the runs a run that went
/// on this long made the schedule skip. Counted up to 10 000.
pub fn due_between(
    schedule: &Schedule,
    zone: &jiff::tz::TimeZone,
    from_ms: i64,
    to_ms: i64,
) -> (u64, Option<i64>) {
    let mut n = 0;
    let mut t = from_ms;
    loop {
        match next_after(schedule, zone, t) {
            Some(next) if next <= to_ms && n < 10_000 => {
                n += 1;
                t = next;
            }
            Some(next) => return (n, Some(next)),
            None => return (n, None),
        }
    }
}

/// `ms` from now as a duration (zero when past).
pub fn until(ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms - now_ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(text: &str) -> Schedule {
        Schedule::Cron(Box::new(
            croner::parser::CronParser::new().parse(text).unwrap(),
        ))
    }

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    fn show(ms: i64) -> String {
        jiff::Timestamp::from_millisecond(ms).unwrap().to_string()
    }

    #[test]
    fn cron_is_read_in_the_partners_timezone() {
        let brussels = jiff::tz::TimeZone::get("Europe/Brussels").unwrap();
        let s = cron("0 6,18 * * *");
        // Winter: UTC+1.
        let next = next_after(&s, &brussels, ms("2026-01-10T06:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-01-10T17:00:00Z");
        // Summer: UTC+2.
        let next = next_after(&s, &brussels, ms("2026-07-10T00:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-07-10T04:00:00Z");
    }

    #[test]
    fn daylight_saving_changes_run_a_job_once() {
        let brussels = jiff::tz::TimeZone::get("Europe/Brussels").unwrap();
        // 02:30 does not exist on 2026-03-29 (02:00 → 03:00): it runs once, at 03:00 CEST.
        let s = cron("30 2 * * *");
        let next = next_after(&s, &brussels, ms("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-03-29T01:00:00Z");
        let after = next_after(&s, &brussels, next).unwrap();
        assert_eq!(show(after), "2026-03-30T00:30:00Z");
        // 02:30 happens twice on 2026-10-25: the job runs at the first one only.
        let next = next_after(&s, &brussels, ms("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(show(next), "2026-10-25T00:30:00Z");
        let after = next_after(&s, &brussels, next).unwrap();
        assert_eq!(show(after), "2026-10-26T01:30:00Z");
    }

    #[test]
    fn every_counts_from_the_due_time_and_skips_are_counted() {
        let utc = jiff::tz::TimeZone::UTC;
        let s = Schedule::Every(Duration::from_secs(10));
        assert_eq!(next_after(&s, &utc, 1_000), Some(11_000));
        // A run from 11 s to 45 s overran three due times (21, 31, 41); the next is 51 s.
        assert_eq!(due_between(&s, &utc, 11_000, 45_000), (3, Some(51_000)));
        let every_second = cron("* * * * * *");
        assert_eq!(due_between(&every_second, &utc, 0, 3_500), (3, Some(4_000)));
    }
}
