//! The in-memory timetable of due work: one entry per role and per
//! connection (its own access key), ordered by due time. It is rebuilt from
//! the times stored with each role and connection, so a restart, reload or
//! leader change neither forgets nor repeats anything; idle roles cost no
//! storage operation per tick.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use time::OffsetDateTime;
use tokio::sync::Notify;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Job {
    Role(String),
    Root(String),
    /// The periodic drift check over every role.
    DriftCheck,
}

#[derive(Default)]
struct Queue {
    by_time: BTreeSet<(OffsetDateTime, Job)>,
    due_at: HashMap<Job, OffsetDateTime>,
    running: HashSet<Job>,
}

#[derive(Default)]
pub struct Timetable {
    queue: Mutex<Queue>,
    changed: Notify,
}

impl Timetable {
    /// Sets (or clears, with `None`) when `job` is next due.
    pub fn set(&self, job: Job, due: Option<OffsetDateTime>) {
        let mut queue = self.queue.lock().expect("timetable lock");
        if let Some(previous) = queue.due_at.remove(&job) {
            queue.by_time.remove(&(previous, job.clone()));
        }
        if let Some(due) = due {
            queue.by_time.insert((due, job.clone()));
            queue.due_at.insert(job, due);
        }
        drop(queue);
        self.changed.notify_one();
    }

    pub fn due_at(&self, job: &Job) -> Option<OffsetDateTime> {
        self.queue
            .lock()
            .expect("timetable lock")
            .due_at
            .get(job)
            .copied()
    }

    pub fn next_due(&self) -> Option<OffsetDateTime> {
        let queue = self.queue.lock().expect("timetable lock");
        queue
            .by_time
            .iter()
            .find(|(_, job)| !queue.running.contains(job))
            .map(|(at, _)| *at)
    }

    /// Up to `limit` jobs due at `now`, earliest first, marked running so
    /// they are not handed out twice.
    pub fn take_due(&self, now: OffsetDateTime, limit: usize) -> Vec<Job> {
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
}
