//! The engine's background threads, shared by every log of the process: a
//! bounded set of workers and one timer thread, instead of a few threads
//! per open log (500 open logs once ran 1,001 threads). Knows no log: a
//! log gives it `Job`s (a flush, a seal, an epoch tick, a shipping run)
//! and wakes them when there is work, now or after a delay, or has the
//! timer wake them at a period.
//!
//! Two classes of worker, so that slow work cannot hold up timely work:
//! `Class::Timely` (a Batched log's fdatasync, a Buffered log's write,
//! epoch tags, async appends' groups) and `Class::Slow` (sealing, shipping,
//! retention). A job never runs on two workers at once; a wake while it
//! runs runs it once more after. `Job::stop` waits for a run under way and
//! keeps it from running again: what a log's close needs.

use parking_lot::{Condvar, Mutex};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Which workers run a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Short work with a deadline: syncs, flushes, epoch tags, commits.
    Timely,
    /// Work that may take long: sealing, shipping, retention.
    Slow,
}

/// Workers per process when no option asks for more: half of them timely,
/// half slow. With the timer thread, 9 threads however many logs are open.
pub const THREADS_DEFAULT: usize = 8;

/// No option gets more workers than this (with the timer: 32 threads).
pub const THREADS_MAX: usize = 31;

/// Work a log hands to the pool: `run` once per wake.
pub struct Job {
    class: Class,
    run: Box<dyn Fn() + Send + Sync>,
    state: Mutex<State>,
    done: Condvar,
    /// A delayed wake is already in the timer (one is enough).
    timer_armed: AtomicBool,
}

#[derive(Default)]
struct State {
    queued: bool,
    running: bool,
    again: bool,
    stopped: bool,
}

impl Job {
    /// A job of `class` that calls `run` each time it is woken.
    pub fn new(class: Class, run: impl Fn() + Send + Sync + 'static) -> Arc<Job> {
        Arc::new(Job {
            class,
            run: Box::new(run),
            state: Mutex::new(State::default()),
            done: Condvar::new(),
            timer_armed: AtomicBool::new(false),
        })
    }

    /// Runs the job soon on a worker of its class (once, however many
    /// wakes come before it starts; once more if it is running).
    pub fn wake(self: &Arc<Self>) {
        let mut s = self.state.lock();
        if s.stopped || s.queued {
            return;
        }
        if s.running {
            s.again = true;
            return;
        }
        s.queued = true;
        drop(s);
        pool().push(self.clone());
    }

    /// Wakes the job `delay` from now, unless a delayed wake is pending.
    pub fn wake_after(self: &Arc<Self>, delay: Duration) {
        if self.timer_armed.swap(true, Ordering::AcqRel) {
            return;
        }
        pool().at(Instant::now() + delay, Arc::downgrade(self), None);
    }

    /// Wakes the job every `period` until it is stopped.
    pub fn every(self: &Arc<Self>, period: Duration) {
        pool().at(Instant::now() + period, Arc::downgrade(self), Some(period));
    }

    /// Keeps the job from running again and waits for a run under way.
    pub fn stop(&self) {
        let mut s = self.state.lock();
        s.stopped = true;
        while s.running {
            self.done.wait(&mut s);
        }
    }

    fn stopped(&self) -> bool {
        self.state.lock().stopped
    }

    /// A worker's turn: runs the job unless it was stopped meanwhile.
    fn run_once(self: &Arc<Self>) {
        {
            let mut s = self.state.lock();
            s.queued = false;
            if s.stopped {
                self.done.notify_all();
                return;
            }
            s.running = true;
        }
        // A panicking job must not take the worker (and with it every
        // log's work) down: it is as if that run failed.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.run)()));
        let mut s = self.state.lock();
        s.running = false;
        self.done.notify_all();
        if std::mem::take(&mut s.again) && !s.stopped {
            s.queued = true;
            drop(s);
            pool().push(self.clone());
        }
    }
}

/// A wake the timer owes: at `at`, and again every `period` if set.
struct Timed {
    at: Instant,
    order: u64,
    job: Weak<Job>,
    period: Option<Duration>,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// The process's pool: a queue per class, the timer's heap, and the
/// workers started so far.
pub struct Pool {
    queues: [Mutex<VecDeque<Arc<Job>>>; 2],
    ready: [Condvar; 2],
    timer: Mutex<(BinaryHeap<Reverse<Timed>>, u64)>,
    timer_wake: Condvar,
    /// Workers started per class.
    started: [AtomicUsize; 2],
    spawn_lock: Mutex<()>,
}

fn index(c: Class) -> usize {
    match c {
        Class::Timely => 0,
        Class::Slow => 1,
    }
}

/// The pool, its timer started at first use. Workers start as
/// `ensure_workers` asks, at least one per class.
pub fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    let p = POOL.get_or_init(|| Pool {
        queues: [Mutex::new(VecDeque::new()), Mutex::new(VecDeque::new())],
        ready: [Condvar::new(), Condvar::new()],
        timer: Mutex::new((BinaryHeap::new(), 0)),
        timer_wake: Condvar::new(),
        started: [AtomicUsize::new(0), AtomicUsize::new(0)],
        spawn_lock: Mutex::new(()),
    });
    static TIMER: OnceLock<()> = OnceLock::new();
    TIMER.get_or_init(|| {
        let _ = std::thread::Builder::new()
            .name("wormlog-timer".into())
            .spawn(|| pool().run_timer());
    });
    p
}

impl Pool {
    /// Makes sure `threads` workers (split between the classes, at least
    /// one each) run, up to `THREADS_MAX`: a log's open asks for what its
    /// options say; the pool keeps the most any log asked for.
    pub fn ensure_workers(&'static self, threads: usize) -> std::io::Result<()> {
        let threads = threads.clamp(2, THREADS_MAX);
        let _one = self.spawn_lock.lock();
        let timely = threads / 2;
        for (class, want) in [(Class::Timely, timely), (Class::Slow, threads - timely)] {
            let i = index(class);
            while self.started[i].load(Ordering::Acquire) < want {
                let n = self.started[i].load(Ordering::Acquire);
                let name = format!("wormlog-{}-{n}", ["timely", "slow"][i]);
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || pool().run_worker(class))?;
                self.started[i].fetch_add(1, Ordering::AcqRel);
            }
        }
        Ok(())
    }

    fn push(&self, job: Arc<Job>) {
        let i = index(job.class);
        self.queues[i].lock().push_back(job);
        self.ready[i].notify_one();
    }

    fn at(&self, at: Instant, job: Weak<Job>, period: Option<Duration>) {
        let mut t = self.timer.lock();
        t.1 += 1;
        let order = t.1;
        let soonest = t.0.peek().is_none_or(|Reverse(first)| at < first.at);
        t.0.push(Reverse(Timed {
            at,
            order,
            job,
            period,
        }));
        if soonest {
            self.timer_wake.notify_one();
        }
    }

    fn run_worker(&self, class: Class) {
        let i = index(class);
        loop {
            let job = {
                let mut q = self.queues[i].lock();
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    self.ready[i].wait(&mut q);
                }
            };
            job.run_once();
        }
    }

    /// Wakes each job when its time comes, and re-arms periodic ones. A
    /// job whose log is gone (the `Weak` is dead) or stopped is dropped.
    fn run_timer(&self) {
        let mut t = self.timer.lock();
        loop {
            let now = Instant::now();
            let due = t.0.peek().is_some_and(|Reverse(first)| first.at <= now);
            if !due {
                match t.0.peek().map(|Reverse(first)| first.at) {
                    Some(at) => {
                        self.timer_wake.wait_until(&mut t, at);
                    }
                    None => self.timer_wake.wait(&mut t),
                }
                continue;
            }
            let Some(Reverse(timed)) = t.0.pop() else {
                continue;
            };
            let Some(job) = timed.job.upgrade() else {
                continue;
            };
            if job.stopped() {
                continue;
            }
            match timed.period {
                Some(period) => {
                    t.1 += 1;
                    let order = t.1;
                    // From now, not from when it was due: a late timer does
                    // not owe a burst of wakes.
                    t.0.push(Reverse(Timed {
                        at: now + period,
                        order,
                        job: timed.job,
                        period: Some(period),
                    }));
                }
                None => job.timer_armed.store(false, Ordering::Release),
            }
            drop(t);
            job.wake();
            t = self.timer.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_woken_job_runs_and_a_stopped_one_does_not() {
        pool().ensure_workers(2).unwrap();
        let runs = Arc::new(AtomicU64::new(0));
        let r = runs.clone();
        let job = Job::new(Class::Timely, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        job.wake();
        let deadline = Instant::now() + Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        job.stop();
        job.wake();
        job.wake_after(Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_periodic_job_runs_again_and_never_on_two_workers_at_once() {
        pool().ensure_workers(4).unwrap();
        let (runs, inside, overlapped) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (r, i, o) = (runs.clone(), inside.clone(), overlapped.clone());
        let job = Job::new(Class::Slow, move || {
            if i.swap(true, Ordering::SeqCst) {
                o.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(3));
            r.fetch_add(1, Ordering::SeqCst);
            i.store(false, Ordering::SeqCst);
        });
        job.every(Duration::from_millis(1));
        for _ in 0..20 {
            job.wake();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while runs.load(Ordering::SeqCst) < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        job.stop();
        assert!(runs.load(Ordering::SeqCst) >= 5);
        assert!(!overlapped.load(Ordering::SeqCst));
    }
}
