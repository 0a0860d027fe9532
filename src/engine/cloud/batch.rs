//! Coalesces DRS calls of concurrent rotations on one connection: while a
//! batch call is on its way (waiting for a pacing token, or in flight), the
//! items of other rotations queue up and go together in the next call. So a
//! thousand due rotations cost a few dozen DRS calls, not two thousand.
//! Flushing runs in its own task, so a cancelled request never strands the
//! rotations waiting on the same batch.

// Each answer carries the clients' one error type by value, as every other
// provider call does; boxing it only here would buy nothing.
#![allow(clippy::result_large_err)]

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::providers::ProviderError;
use crate::providers::huaweicloud::drs::{DrsClient, DrsJobStatus, DrsPasswordChange};

/// DRS documents no limit; this keeps one request body modest.
const MAX_BATCH: usize = 100;

type Reply<O> = oneshot::Sender<Result<O, ProviderError>>;

struct Queue<I, O> {
    pending: Vec<(I, Reply<O>)>,
    flushing: bool,
}

/// Items waiting for the next call, and whether a flush task is running.
/// Also coalesces the target reads (`targets`).
pub(super) struct Batches<I, O>(Mutex<Queue<I, O>>);

impl<I: Send + 'static, O: Send + 'static> Batches<I, O> {
    pub(super) fn new() -> Self {
        Self(Mutex::new(Queue {
            pending: Vec::new(),
            flushing: false,
        }))
    }

    /// Queues `items`; starts a flush task if none runs; waits for the
    /// answers, in the order of `items`.
    pub(super) async fn submit<F, Fut>(
        self: &Arc<Self>,
        items: Vec<I>,
        flush: F,
    ) -> Vec<Result<O, ProviderError>>
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O, ProviderError>>> + Send,
    {
        let mut answers = Vec::with_capacity(items.len());
        let start = {
            let mut queue = self.0.lock().expect("batch lock");
            for item in items {
                let (reply, answer) = oneshot::channel();
                queue.pending.push((item, reply));
                answers.push(answer);
            }
            !std::mem::replace(&mut queue.flushing, true)
        };
        if start {
            let batches = self.clone();
            tokio::spawn(async move { batches.flush_all(flush).await });
        }
        let mut out = Vec::with_capacity(answers.len());
        for answer in answers {
            out.push(answer.await.expect("the flush task answers every item"));
        }
        out
    }

    async fn flush_all<F, Fut>(&self, flush: F)
    where
        F: Fn(Vec<I>) -> Fut,
        Fut: Future<Output = Vec<Result<O, ProviderError>>>,
    {
        loop {
            let batch: Vec<(I, Reply<O>)> = {
                let mut queue = self.0.lock().expect("batch lock");
                if queue.pending.is_empty() {
                    queue.flushing = false;
                    return;
                }
                let take = queue.pending.len().min(MAX_BATCH);
                queue.pending.drain(..take).collect()
            };
            let (items, replies): (Vec<I>, Vec<Reply<O>>) = batch.into_iter().unzip();
            for (reply, result) in replies.into_iter().zip(flush(items).await) {
                let _ = reply.send(result);
            }
        }
    }
}

/// The DRS calls of one connection, shared by every rotation using it.
pub struct DrsBatcher {
    client: DrsClient,
    status: Arc<Batches<String, DrsJobStatus>>,
    modify: Arc<Batches<DrsPasswordChange, Option<String>>>,
}

impl DrsBatcher {
    pub fn new(client: DrsClient) -> Self {
        Self {
            client,
            status: Arc::new(Batches::new()),
            modify: Arc::new(Batches::new()),
        }
    }

    /// The state of each job, in order.
    pub async fn status(&self, job_ids: Vec<String>) -> Vec<Result<DrsJobStatus, ProviderError>> {
        let client = self.client.clone();
        self.status
            .submit(job_ids, move |ids: Vec<String>| {
                let client = client.clone();
                async move {
                    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                    match client.batch_status(&refs).await {
                        Ok(response) => response.jobs.into_iter().map(Ok).collect(),
                        Err(error) => ids.iter().map(|_| Err(error.clone())).collect(),
                    }
                }
            })
            .await
    }

    /// Sends each change; each gets the request id of its call, or why not.
    pub async fn modify(
        &self,
        changes: Vec<DrsPasswordChange>,
    ) -> Vec<Result<Option<String>, ProviderError>> {
        let client = self.client.clone();
        self.modify
            .submit(changes, move |changes: Vec<DrsPasswordChange>| {
                let client = client.clone();
                async move {
                    match client.batch_modify_password(&changes).await {
                        Ok(response) => {
                            let request_id = response.info.request_id.clone();
                            response
                                .results
                                .into_iter()
                                .map(|item| item.outcome.map(|()| request_id.clone()))
                                .collect()
                        }
                        Err(error) => changes.iter().map(|_| Err(error.clone())).collect(),
                    }
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_submissions_share_calls_and_get_their_own_answers() {
        let batches: Arc<Batches<u32, u32>> = Arc::new(Batches::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for n in 0..50u32 {
            let batches = batches.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                batches
                    .submit(vec![n, n + 1000], move |items: Vec<u32>| {
                        let calls = calls.clone();
                        async move {
                            calls.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            items.into_iter().map(|i| Ok(i * 2)).collect()
                        }
                    })
                    .await
            }));
        }
        for (n, task) in tasks.into_iter().enumerate() {
            let answers: Vec<u32> = task
                .await
                .unwrap()
                .into_iter()
                .map(Result::unwrap)
                .collect();
            assert_eq!(answers, vec![n as u32 * 2, (n as u32 + 1000) * 2]);
        }
        let calls = calls.load(Ordering::SeqCst);
        assert!(calls < 10, "50 submissions took {calls} calls");
    }
}
