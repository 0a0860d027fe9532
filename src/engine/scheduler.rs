//! The in-memory timetable of due work: one entry per role and per
//! connection (its own access key), ordered by due time. It is rebuilt from
//! the times stored with each role and connection, so a restart, reload or
//! leader change neither forgets nor repeats anything; idle roles cost no
//! storage operation per tick.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::Notify;

/// A role's or connection's name is an `Arc<str>`, so the two places a job
/// is kept share one allocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    Role(Arc<str>),
    Root(Arc<str>),
    /// The periodic drift check over every role.
    DriftCheck,
}

/// A due time as Unix nanoseconds: 8 bytes against an `OffsetDateTime`'s
/// 16 or more, and exact up to the year 2262 (a later time is kept as
/// then, still centuries ahead).
type Due = i64;

fn due(at: OffsetDateTime) -> Due {
    Due::try_from(at.unix_timestamp_nanos()).unwrap_or(if at.year() < 1970 {
        Due::MIN
    } else {
        Due::MAX
    })
}

fn time_of(due: Due) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(due.into())
        .expect("an i64 of nanoseconds is in range")
}

/// One entry per job in each of `by_time` and `due_at`, so they are kept
/// compact: `due_at` is a vector sorted by job (a new due time for a job
/// already there is written in place; jobs come and go far less often).
#[derive(Default)]
struct Queue {
    by_time: BTreeSet<(Due, Job)>,
    due_at: Vec<(Job, Due)>,
    running: HashSet<Job>,
}

impl Queue {
    fn position(&self, job: &Job) -> Result<usize, usize> {
        self.due_at.binary_search_by(|(j, _)| j.cmp(job))
    }
}

#[derive(Default)]
pub struct Timetable {
    queue: Mutex<Queue>,
    changed: Notify,
}

impl Timetable {
    /// Sets (or clears, with `None`) when `job` is next due.
    pub fn set(&self, job: Job, at: Option<OffsetDateTime>) {
        let mut guard = self.queue.lock().expect("timetable lock");
        let queue = &mut *guard;
        match (queue.position(&job), at.map(due)) {
            (Ok(i), Some(at)) => {
                let previous = std::mem::replace(&mut queue.due_at[i].1, at);
                // Keeps the stored name, which `due_at` shares.
                let (_, job) = queue
                    .by_time
                    .take(&(previous, job))
                    .expect("a job in due_at is in by_time");
                queue.by_time.insert((at, job));
            }
            (Ok(i), None) => {
                let (job, previous) = queue.due_at.remove(i);
                queue.by_time.remove(&(previous, job));
            }
            (Err(i), Some(at)) => {
                queue.due_at.insert(i, (job.clone(), at));
                queue.by_time.insert((at, job));
            }
            (Err(_), None) => {}
        }
        drop(guard);
        self.changed.notify_one();
    }

    pub fn due_at(&self, job: &Job) -> Option<OffsetDateTime> {
        let queue = self.queue.lock().expect("timetable lock");
        let at = queue.position(job).ok()?;
        Some(time_of(queue.due_at[at].1))
    }

    pub fn next_due(&self) -> Option<OffsetDateTime> {
        let queue = self.queue.lock().expect("timetable lock");
        queue
            .by_time
            .iter()
            .find(|(_, job)| !queue.running.contains(job))
            .map(|(at, _)| time_of(*at))
    }

    /// Up to `limit` jobs due at `now`, earliest first, marked running so
    /// they are not handed out twice.
    pub fn take_due(&self, now: OffsetDateTime, limit: usize) -> Vec<Job> {
        let now = due(now);
        let mut queue = self.queue.lock().expect("timetable lock");
        let due: Vec<Job> = queue
            .by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .filter(|(_, job)| !queue.running.contains(job))
            .take(limit)
            .map(|(_, job)| job.clone())
            .collect();
        queue.running.extend(due.iter().cloned());
        due
    }

    pub fn finished(&self, job: &Job) {
        self.queue
            .lock()
            .expect("timetable lock")
            .running
            .remove(job);
        self.changed.notify_one();
    }

    /// Frees the spare capacity left by growing, after the initial load.
    pub fn shrink_to_fit(&self) {
        self.queue
            .lock()
            .expect("timetable lock")
            .due_at
            .shrink_to_fit();
    }

    pub fn len(&self) -> usize {
        self.queue.lock().expect("timetable lock").due_at.len()
    }

    /// Resolves when the timetable changes (a new or earlier due time).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn wake(&self) {
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hands_out_due_jobs_once_in_time_order() {
        let table = Timetable::default();
        let t0 = datetime!(2026-11-25 10:00:00 UTC);
        table.set(
            Job::Role("late".into()),
            Some(t0 + time::Duration::minutes(5)),
        );
        table.set(Job::Role("b".into()), Some(t0));
        table.set(
            Job::Root("conn".into()),
            Some(t0 - time::Duration::minutes(1)),
        );
        table.set(Job::Role("gone".into()), Some(t0));
        table.set(Job::Role("gone".into()), None);
        assert_eq!(table.len(), 3);
        let due = table.take_due(t0, 10);
        assert_eq!(due, vec![Job::Root("conn".into()), Job::Role("b".into())]);
        assert!(
            table.take_due(t0, 10).is_empty(),
            "running jobs are not handed out again"
        );
        assert_eq!(table.next_due(), Some(t0 + time::Duration::minutes(5)));
        table.finished(&Job::Role("b".into()));
        table.set(Job::Role("b".into()), Some(t0 + time::Duration::hours(1)));
        assert_eq!(
            table.take_due(t0 + time::Duration::minutes(10), 1),
            vec![Job::Role("late".into())]
        );
    }

    #[test]
    fn due_times_keep_their_nanoseconds() {
        let table = Timetable::default();
        let at = datetime!(2026-11-25 10:00:00.123456789 UTC);
        table.set(Job::Root("conn".into()), Some(at));
        assert_eq!(table.due_at(&Job::Root("conn".into())), Some(at));
        assert_eq!(table.next_due(), Some(at));
        assert!(
            table
                .take_due(at - time::Duration::nanoseconds(1), 1)
                .is_empty()
        );
        assert_eq!(table.take_due(at, 1), vec![Job::Root("conn".into())]);
        // Beyond i64 nanoseconds: kept as 2262, still centuries ahead.
        table.set(Job::DriftCheck, Some(datetime!(3000-01-01 00:00:00 UTC)));
        assert_eq!(
            table.due_at(&Job::DriftCheck).map(|at| at.year()),
            Some(2262)
        );
    }
}
