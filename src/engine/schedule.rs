//! When a credential rotates: every `rotation_period`, or on a 5-field cron
//! `rotation_schedule` (UTC) with an optional `rotation_window`, or only on
//! demand. The same fields and rules as Vault's automated rotation.

use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::framework::{Error, Field, FieldData};

/// Vault's minimums: the queue tick for periods, an hour for windows.
pub const MIN_PERIOD: Duration = Duration::from_secs(5);
pub const MIN_WINDOW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub period: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub window: Option<Duration>,
    #[serde(default)]
    pub disabled: bool,
}

pub fn fields() -> Vec<Field> {
    vec![
        Field::duration(
            "rotation_period",
            "Rotate every this long (e.g. 24h; at least 5s). Exclusive with rotation_schedule.",
        ),
        Field::string(
            "rotation_schedule",
            "Rotate on this 5-field cron schedule, in UTC (e.g. \"0 3 * * SUN\"). Exclusive with rotation_period.",
        )
        .max_len(256),
        Field::duration(
            "rotation_window",
            "With rotation_schedule: how long after each scheduled time a rotation may still start (at least 1h). A slot missed by more than this waits for the next one.",
        ),
        Field::bool(
            "disable_automated_rotation",
            "Never rotate on a schedule; only rotate-role/rotate-root (and lease ends) rotate.",
        )
        .default(false),
    ]
}

fn parse_cron(expression: &str) -> Result<croner::Cron, String> {
    let parts = expression.split_whitespace().count();
    if !(parts == 5 || (parts == 1 && expression.trim_start().starts_with('@'))) {
        return Err(format!(
            "rotation_schedule {expression:?} is not a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. \"0 3 * * *\""
        ));
    }
    croner::Cron::from_str(expression).map_err(|err| {
        format!("rotation_schedule {expression:?} is not a valid cron expression: {err}")
    })
}

impl Schedule {
    /// Applies the schedule fields of a write on top of `self`, then
    /// validates the result.
    pub fn update_from(&mut self, data: &FieldData) -> Result<(), Error> {
        if data.provided("rotation_period") {
            self.period = data.duration("rotation_period").filter(|d| !d.is_zero());
            if self.period.is_some() && !data.provided("rotation_schedule") {
                self.cron = None;
                self.window = None;
            }
        }
        if data.provided("rotation_schedule") {
            self.cron = data
                .str("rotation_schedule")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if self.cron.is_some() && !data.provided("rotation_period") {
                self.period = None;
            }
        }
        if data.provided("rotation_window") {
            self.window = data.duration("rotation_window").filter(|d| !d.is_zero());
        }
        if data.provided("disable_automated_rotation") {
            self.disabled = data.bool("disable_automated_rotation").unwrap_or(false);
        }
        self.validate().map_err(Error::BadRequest)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.period.is_some() && self.cron.is_some() {
            return Err(
                "rotation_period and rotation_schedule are exclusive: set one of them".into(),
            );
        }
        if let Some(period) = self.period
            && period < MIN_PERIOD
        {
            return Err(format!(
                "rotation_period must be at least {}s",
                MIN_PERIOD.as_secs()
            ));
        }
        if let Some(cron) = &self.cron {
            // A pattern of dates that do not exist parses, but would leave
            // the credential without any automated rotation.
            if next_cron_time(&parse_cron(cron)?, OffsetDateTime::now_utc()).is_none() {
                return Err(format!(
                    "rotation_schedule {cron:?} never fires (it names days that do not exist, such as February 30); pick a day of the month every month given has"
                ));
            }
        }
        if let Some(window) = self.window {
            if self.cron.is_none() {
                return Err("rotation_window only applies with rotation_schedule".into());
            }
            if window < MIN_WINDOW {
                return Err("rotation_window must be at least 1h".into());
            }
        }
        Ok(())
    }

    pub fn is_automatic(&self) -> bool {
        !self.disabled && (self.period.is_some() || self.cron.is_some())
    }

    /// The next time a rotation is due, given the last one. `None` when the
    /// credential only rotates on demand.
    pub fn next_after(
        &self,
        last: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        if self.disabled {
            return None;
        }
        if let Some(period) = self.period {
            return Some(last.map_or(now, |last| last + period));
        }
        let cron = parse_cron(self.cron.as_deref()?).ok()?;
        // A slot missed by more than the window is skipped; without a window
        // a missed slot still rotates once.
        let from = match (last, self.window) {
            (Some(last), Some(window)) => last.max(now - window),
            (Some(last), None) => last,
            (None, _) => now,
        };
        next_cron_time(&cron, from)
    }

    /// Whether a rotation due at `due` may still start at `now`: always for
    /// periods; for schedules, only inside the window after the slot.
    pub fn in_window(&self, due: OffsetDateTime, now: OffsetDateTime) -> bool {
        match (self.cron.is_some(), self.window) {
            (true, Some(window)) => now <= due + window,
            _ => true,
        }
    }

    /// The next regular slot strictly after `now`, ignoring when the last
    /// rotation was: where a role that gave up tries again.
    pub fn next_cycle_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        if self.disabled {
            return None;
        }
        match self.period {
            Some(period) => Some(now + period),
            None => self.next_slot_after(now),
        }
    }

    /// The next cron slot strictly after `now` (used when a window was missed).
    pub fn next_slot_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let cron = parse_cron(self.cron.as_deref()?).ok()?;
        next_cron_time(&cron, now)
    }

    /// The schedule as the read endpoints show it.
    pub fn describe(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut out = serde_json::Map::new();
        out.insert(
            "rotation_period".into(),
            self.period.map_or(0, |p| p.as_secs()).into(),
        );
        out.insert(
            "rotation_schedule".into(),
            self.cron.clone().unwrap_or_default().into(),
        );
        out.insert(
            "rotation_window".into(),
            self.window.map_or(0, |w| w.as_secs()).into(),
        );
        out.insert("disable_automated_rotation".into(), self.disabled.into());
        out
    }
}

fn next_cron_time(cron: &croner::Cron, after: OffsetDateTime) -> Option<OffsetDateTime> {
    let from = chrono::DateTime::from_timestamp(after.unix_timestamp(), 0)?;
    let next = cron.find_next_occurrence(&from, false).ok()?;
    OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn update(schedule: &mut Schedule, raw: serde_json::Value) -> Result<(), Error> {
        let data = FieldData::parse(&fields(), raw.as_object().unwrap(), &[], true)?;
        schedule.update_from(&data)
    }

    #[test]
    fn period_and_schedule_are_exclusive_and_switchable() {
        let mut s = Schedule::default();
        update(&mut s, json!({"rotation_period": "24h"})).unwrap();
        assert_eq!(s.period, Some(Duration::from_secs(86_400)));
        update(
            &mut s,
            json!({"rotation_schedule": "0 3 * * *", "rotation_window": "2h"}),
        )
        .unwrap();
        assert_eq!((s.period, s.cron.as_deref()), (None, Some("0 3 * * *")));
        let err = update(
            &mut s,
            json!({"rotation_period": "1h", "rotation_schedule": "0 3 * * *"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("exclusive"));
    }

    #[test]
    fn rejects_bad_values_with_reasons() {
        let cases = [
            (json!({"rotation_period": "1s"}), "at least 5s"),
            (json!({"rotation_schedule": "* * * *"}), "5-field"),
            (json!({"rotation_schedule": "0 0 0 * * *"}), "5-field"),
            (
                json!({"rotation_schedule": "61 * * * *"}),
                "not a valid cron",
            ),
            (
                json!({"rotation_period": "1h", "rotation_window": "2h"}),
                "only applies",
            ),
            (
                json!({"rotation_schedule": "0 3 * * *", "rotation_window": "10m"}),
                "at least 1h",
            ),
            // Found by tests/e2e_bad_input.rs: accepted, then never rotated.
            (json!({"rotation_schedule": "0 0 31 2 *"}), "never fires"),
            (
                json!({"rotation_schedule": "0 0 31 4,6,9,11 *"}),
                "never fires",
            ),
            (json!({"rotation_schedule": "0 0 31W 2 *"}), "never fires"),
        ];
        for (raw, expected) in cases {
            let err = update(&mut Schedule::default(), raw.clone())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{raw}: {err}");
        }
    }

    #[test]
    fn next_times_for_period_and_cron() {
        let now = datetime!(2026-11-25 10:30:00 UTC);
        let period = Schedule {
            period: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        assert_eq!(period.next_after(None, now), Some(now));
        assert_eq!(
            period.next_after(Some(now), now),
            Some(datetime!(2026-11-25 11:30:00 UTC))
        );
        let cron = Schedule {
            cron: Some("0 3 * * *".into()),
            ..Default::default()
        };
        assert_eq!(
            cron.next_after(Some(now), now),
            Some(datetime!(2026-11-26 03:00:00 UTC))
        );
        let disabled = Schedule {
            disabled: true,
            ..period.clone()
        };
        assert_eq!(disabled.next_after(Some(now), now), None);
        assert_eq!(Schedule::default().next_after(None, now), None);
    }

    #[test]
    fn window_bounds_a_late_start() {
        let s = Schedule {
            cron: Some("0 3 * * *".into()),
            window: Some(Duration::from_secs(3600)),
            ..Default::default()
        };
        let slot = datetime!(2026-11-25 03:00:00 UTC);
        assert!(s.in_window(slot, datetime!(2026-11-25 03:59:00 UTC)));
        assert!(!s.in_window(slot, datetime!(2026-11-25 04:01:00 UTC)));
        assert_eq!(
            s.next_slot_after(datetime!(2026-11-25 04:01:00 UTC)),
            Some(datetime!(2026-11-26 03:00:00 UTC))
        );
    }
}
