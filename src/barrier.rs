//! The group-commit barrier. Callers queue requests; one of them leads: it
//! takes queued requests in order (up to a weight budget, always at least
//! one), runs the group's work without holding the queue, and hands every
//! request of the group its outcome; then the oldest request still queued
//! leads next. It knows no file and no format: what a group does is the
//! closure the leader passes in.
//!
//! A request may also be queued without a thread waiting for it
//! (`submit`): its outcome wakes a `Waker` instead (an async append), and
//! since no thread of its own can lead, the barrier calls its `lead_wanted`
//! hook whenever such a request is first in the queue and no one leads; the
//! hook has a worker call `lead_submitted`, which leads until no submitted
//! request is first.
//!
//! A failed group fails every request still queued as well: the caller's
//! work failed in a way later groups cannot be trusted to follow (the log
//! is poisoned after a failed write or fdatasync), and no waiter may be left
//! waiting for an outcome that will never come.

use crate::error::{Error, Result};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::Arc;
#[cfg(feature = "async")]
use std::task::Waker;

/// One queued request and the outcome its caller waits for.
struct Waiter<T, R> {
    item: T,
    weight: usize,
    outcome: Mutex<Option<Result<R>>>,
    /// Signalled (under the queue lock) when the outcome is set, or when this
    /// request is first in the queue and no one leads: waking only the
    /// threads concerned keeps 64 writers from stampeding at every commit.
    wake: Condvar,
    /// For a submitted request: no thread waits on `wake`; this waker (the
    /// latest a future's poll left) is woken with the outcome instead.
    #[cfg(feature = "async")]
    waker: Option<Mutex<Option<Waker>>>,
}

impl<T, R> Waiter<T, R> {
    /// Sets the outcome and wakes the waiter; called with the queue locked.
    fn finish(&self, outcome: Result<R>) {
        *self.outcome.lock() = Some(outcome);
        self.wake.notify_one();
        #[cfg(feature = "async")]
        if let Some(w) = self.waker.as_ref().and_then(|w| w.lock().take()) {
            w.wake();
        }
    }

    /// Queued by `submit`: no thread of its own waits for it.
    fn submitted(&self) -> bool {
        #[cfg(feature = "async")]
        return self.waker.is_some();
        #[cfg(not(feature = "async"))]
        false
    }
}

/// A request queued by `Barrier::submit`: its outcome, once its group ran.
#[cfg(feature = "async")]
pub(crate) struct Submitted<T, R>(Arc<Waiter<T, R>>);

#[cfg(feature = "async")]
impl<T, R> Submitted<T, R> {
    /// The outcome if it is there (taken: a second call gets `None`);
    /// otherwise `waker` is woken when it is.
    pub fn poll_outcome(&self, waker: &Waker) -> Option<Result<R>> {
        let slot = self
            .0
            .waker
            .as_ref()
            .expect("a submitted request has a waker slot");
        // Set the waker before looking, so that an outcome set in between
        // still wakes it.
        *slot.lock() = Some(waker.clone());
        self.0.outcome.lock().take()
    }
}

struct Queue<T, R> {
    pending: Vec<Arc<Waiter<T, R>>>,
    leader: bool,
    closed: bool,
}

/// See the module docs.
pub(crate) struct Barrier<T, R> {
    queue: Mutex<Queue<T, R>>,
    /// Signalled whenever a leader finishes (for `close`).
    leader_done: Condvar,
    /// Called (under the queue lock: it must only wake someone) when a
    /// submitted request is first in the queue with no leader.
    #[cfg(feature = "async")]
    lead_wanted: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl<T, R> Barrier<T, R> {
    pub fn new() -> Self {
        Barrier {
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                leader: false,
                closed: false,
            }),
            leader_done: Condvar::new(),
            #[cfg(feature = "async")]
            lead_wanted: std::sync::OnceLock::new(),
        }
    }

    /// Sets what wakes a leader for submitted requests (once).
    #[cfg(feature = "async")]
    pub fn on_lead_wanted(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.lead_wanted.set(hook);
    }

    #[cfg(feature = "async")]
    fn want_lead(&self) {
        if let Some(hook) = self.lead_wanted.get() {
            hook();
        }
    }

    /// Queues `item` without waiting: the committer thread
    /// (`lead_submitted`) or a blocking caller leads its group.
    #[cfg(feature = "async")]
    pub fn submit(&self, item: T, weight: usize) -> Result<Submitted<T, R>> {
        let me = Arc::new(Waiter {
            item,
            weight,
            outcome: Mutex::new(None),
            wake: Condvar::new(),
            waker: Some(Mutex::new(None)),
        });
        let mut q = self.queue.lock();
        if q.closed {
            return Err(Error::Closed);
        }
        q.pending.push(me.clone());
        if !q.leader && q.pending.len() == 1 {
            self.want_lead();
        }
        Ok(Submitted(me))
    }

    /// Leads groups while a submitted request is first in the queue and
    /// no one leads, calling `after` after each group (outside the queue
    /// lock); returns when neither holds (the hook calls for it again).
    #[cfg(feature = "async")]
    pub fn lead_submitted(
        &self,
        group_max: usize,
        lead: &mut dyn FnMut(&[&T]) -> Result<Vec<R>>,
        after: &mut dyn FnMut(),
    ) {
        let mut q = self.queue.lock();
        while !q.leader && q.pending.first().is_some_and(|w| w.submitted()) {
            q = self.lead_group(q, group_max, lead);
            drop(q);
            after();
            q = self.queue.lock();
        }
    }

    /// Runs one group as its leader: takes it from the queue, runs `lead`
    /// without the queue lock, hands out the outcomes, and passes the lead
    /// on to the oldest request still queued.
    fn lead_group<'a>(
        &'a self,
        mut q: MutexGuard<'a, Queue<T, R>>,
        group_max: usize,
        lead: &mut dyn FnMut(&[&T]) -> Result<Vec<R>>,
    ) -> MutexGuard<'a, Queue<T, R>> {
        q.leader = true;
        let group = take_group(&mut q.pending, group_max);
        drop(q);
        let items: Vec<&T> = group.iter().map(|w| &w.item).collect();
        let result = lead(&items);
        let mut q = self.queue.lock();
        q.leader = false;
        match result {
            Ok(outcomes) => {
                assert_eq!(outcomes.len(), group.len(), "one outcome per request");
                for (w, outcome) in group.iter().zip(outcomes) {
                    w.finish(Ok(outcome));
                }
            }
            Err(e) => {
                for w in group.iter().chain(q.pending.iter()) {
                    w.finish(Err(e.for_waiter()));
                }
                q.pending.clear();
            }
        }
        // Hand the lead to the oldest waiting request: its thread, or for
        // a submitted one, the committer.
        if let Some(next) = q.pending.first() {
            if next.submitted() {
                #[cfg(feature = "async")]
                self.want_lead();
            } else {
                next.wake.notify_one();
            }
        }
        self.leader_done.notify_all();
        q
    }

    /// Queues `item`, which weighs `weight` against a group's `group_max`,
    /// and returns its outcome once its group has run. If this caller
    /// leads, `lead` runs the group: it gets the group's items in queue
    /// order and returns one outcome per item, or one error for them all.
    /// After `close`, fails with `Error::Closed`.
    pub fn enter(
        &self,
        item: T,
        weight: usize,
        group_max: usize,
        lead: &mut dyn FnMut(&[&T]) -> Result<Vec<R>>,
    ) -> Result<R> {
        let me = Arc::new(Waiter {
            item,
            weight,
            outcome: Mutex::new(None),
            wake: Condvar::new(),
            #[cfg(feature = "async")]
            waker: None,
        });
        let mut q = self.queue.lock();
        if q.closed {
            return Err(Error::Closed);
        }
        q.pending.push(me.clone());
        loop {
            if let Some(outcome) = me.outcome.lock().take() {
                return outcome;
            }
            if q.leader {
                me.wake.wait(&mut q);
                continue;
            }
            q = self.lead_group(q, group_max, lead);
        }
    }

    /// Refuses new requests, waits for the current leader to finish, and
    /// fails what is still queued with `Error::Closed`.
    pub fn close(&self) {
        let mut q = self.queue.lock();
        q.closed = true;
        while q.leader {
            self.leader_done.wait(&mut q);
        }
        for w in q.pending.drain(..) {
            w.finish(Err(Error::Closed));
        }
    }
}

/// Takes queued requests in order up to `weight_max` (always at least one).
fn take_group<T, R>(
    pending: &mut Vec<Arc<Waiter<T, R>>>,
    weight_max: usize,
) -> Vec<Arc<Waiter<T, R>>> {
    let mut total = 0;
    let mut n = 0;
    for w in pending.iter() {
        if n > 0 && total + w.weight > weight_max {
            break;
        }
        total += w.weight;
        n += 1;
    }
    pending.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    fn io_failure() -> Error {
        Error::io(
            "fdatasync",
            "/log/seg",
            std::io::Error::other("injected failure"),
        )
    }

    #[test]
    fn every_waiter_of_a_failed_group_and_the_queue_behind_it_learns_the_failure() {
        let barrier: Barrier<usize, usize> = Barrier::new();
        let led = AtomicUsize::new(0);
        let outcomes: Vec<Result<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let (barrier, led) = (&barrier, &led);
                    s.spawn(move || {
                        barrier.enter(i, 1, 4, &mut |group| {
                            led.fetch_add(1, Ordering::SeqCst);
                            // Slow enough for others to queue behind the group.
                            std::thread::sleep(Duration::from_millis(5));
                            assert!(!group.is_empty() && group.len() <= 4);
                            Err(io_failure())
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes.len(), 16);
        for o in &outcomes {
            match o {
                Err(Error::Io { op, .. }) => assert_eq!(*op, "fdatasync"),
                other => panic!("expected the group's I/O error, got {other:?}"),
            }
        }
        assert!(led.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn each_request_gets_its_own_outcome_in_groups_taken_in_queue_order() {
        let barrier: Barrier<(usize, usize), (usize, usize)> = Barrier::new();
        let groups = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for t in 0..8 {
                let (barrier, groups) = (&barrier, &groups);
                s.spawn(move || {
                    for i in 0..200 {
                        let got = barrier
                            .enter((t, i), 3, 10, &mut |group| {
                                groups
                                    .lock()
                                    .push(group.iter().map(|x| **x).collect::<Vec<_>>());
                                Ok(group.iter().map(|x| **x).collect())
                            })
                            .unwrap();
                        assert_eq!(got, (t, i), "a request gets its own outcome");
                    }
                });
            }
        });
        let groups = groups.into_inner();
        let mut seen = [0usize; 8];
        let mut total = 0;
        for g in &groups {
            assert!(!g.is_empty());
            assert!(g.len() * 3 <= 10, "a group stays within its weight budget");
            for &(t, i) in g {
                assert_eq!(i, seen[t], "thread {t}'s requests run in the order queued");
                seen[t] += 1;
                total += 1;
            }
        }
        assert_eq!(total, 8 * 200, "every request ran exactly once");
    }

    #[test]
    fn close_waits_for_the_leader_and_fails_the_queue_behind_it() {
        let barrier: Barrier<usize, usize> = Barrier::new();
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(release_rx);
        std::thread::scope(|s| {
            let b = &barrier;
            let release_rx = &release_rx;
            let leader = s.spawn(move || {
                b.enter(0, 1, 1, &mut |g| {
                    started_tx.send(()).unwrap();
                    release_rx.lock().recv().unwrap();
                    Ok(g.iter().map(|x| **x).collect())
                })
            });
            started_rx.recv().unwrap();
            // Queued behind the leader, with a budget of one per group.
            let queued =
                s.spawn(move || b.enter(1, 1, 1, &mut |g| Ok(g.iter().map(|x| **x).collect())));
            std::thread::sleep(Duration::from_millis(20));
            let closer = s.spawn(move || b.close());
            std::thread::sleep(Duration::from_millis(20));
            assert!(!closer.is_finished(), "close waits while a leader writes");
            release_tx.send(()).unwrap();
            closer.join().unwrap();
            assert_eq!(
                leader.join().unwrap().unwrap(),
                0,
                "the leader's group completes"
            );
            let q = queued.join().unwrap();
            assert!(
                matches!(q, Err(Error::Closed) | Ok(1)),
                "a queued request is either run before close or fails Closed: {q:?}"
            );
        });
        assert!(matches!(
            barrier.enter(2, 1, 1, &mut |_| unreachable!("closed")),
            Err(Error::Closed)
        ));
    }
}
