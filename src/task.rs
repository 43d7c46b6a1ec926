//! Work that blocks (reads that decompress, a file scan) run for async
//! callers on a small pool of the engine's own threads, so that a future
//! completes instead of an executor thread blocking. No async runtime: a
//! `Task` is a plain `Future` woken by the thread that finished the work.
//! Feature `async`.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

type Job = Box<dyn FnOnce() + Send>;

/// Threads of the pool, started at the first task: reads are short and
/// the disk, not the thread count, bounds them.
const THREADS: usize = 2;

/// The pool's queue (jobs run in the order given, `THREADS` at a time).
fn pool() -> &'static Mutex<Sender<Job>> {
    static POOL: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            // A pool that cannot start a thread runs with the ones it has;
            // with none, `run` finds the queue closed and runs in place.
            let _ = std::thread::Builder::new()
                .name(format!("wormlog-task-{i}"))
                .spawn(move || loop {
                    let job = rx.lock().recv();
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
        }
        Mutex::new(tx)
    })
}

struct Slot<R> {
    /// The work's outcome, or its panic (resumed in the awaiting task).
    outcome: Option<std::thread::Result<R>>,
    waker: Option<Waker>,
}

/// The outcome of work run on the pool (see the module docs).
#[must_use = "a task does nothing useful unless awaited"]
pub struct Task<R> {
    slot: Arc<Mutex<Slot<R>>>,
}

impl<R> std::fmt::Debug for Task<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("done", &self.slot.lock().outcome.is_some())
            .finish()
    }
}

/// Runs `work` on the pool; the task completes with its outcome.
pub(crate) fn run<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Task<R> {
    let slot = Arc::new(Mutex::new(Slot {
        outcome: None,
        waker: None,
    }));
    let done = slot.clone();
    let job: Job = Box::new(move || {
        // A panic is handed to the awaiting task, not left to kill a pool
        // thread and leave the task pending for ever.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let waker = {
            let mut s = done.lock();
            s.outcome = Some(outcome);
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    });
    if let Err(failed) = pool().lock().send(job) {
        (failed.0)();
    }
    Task { slot }
}

impl<R> Future for Task<R> {
    type Output = R;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<R> {
        let mut s = self.slot.lock();
        match s.outcome.take() {
            Some(Ok(r)) => Poll::Ready(r),
            Some(Err(panic)) => {
                drop(s);
                std::panic::resume_unwind(panic)
            }
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
