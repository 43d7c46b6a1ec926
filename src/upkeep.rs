//! A log's background work on the shared pool (`background`): the
//! Batched fdatasync and the Buffered write after a group, sealing after a
//! roll, epoch tags, automatic checkpoints and the tree's catch-up every
//! second, shipping runs, and (feature `async`) leading async appends'
//! groups. Each job holds the log's `Engine` weakly.

use crate::background::{self, Class, Job};
use crate::engine::{Engine, Jobs};
use crate::error::{Error, Result};
use crate::merkle;
use crate::options::{Durability, Sealing};
use crate::seal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A job of `class` that runs `tick` on the log while it exists.
fn log_job(inner: &Arc<Engine>, class: Class, tick: fn(&Engine)) -> Arc<Job> {
    let weak = Arc::downgrade(inner);
    Job::new(class, move || {
        if let Some(inner) = weak.upgrade() {
            tick(&inner);
        }
    })
}

/// Hands the log's background work to the shared pool (starting its
/// workers, as many as the options ask, if fewer run).
pub(crate) fn start_jobs(inner: &Arc<Engine>) -> Result<()> {
    let options = &inner.shared.options;
    background::pool()
        .ensure_workers(options.background_threads)
        .map_err(|e| Error::io("spawn thread", "wormlog background pool", e))?;
    let flush = match options.durability {
        Durability::Batched { max_delay } => {
            Some((log_job(inner, Class::Timely, sync_tick), max_delay))
        }
        Durability::Buffered => Some((
            log_job(inner, Class::Timely, flush_tick),
            BUFFERED_WRITE_DELAY,
        )),
        Durability::Sync => None,
    };
    let seal =
        (options.sealing == Sealing::Background).then(|| log_job(inner, Class::Slow, seal_tick));
    let epochs = log_job(inner, Class::Timely, epoch_tick);
    epochs.every(std::time::Duration::from_secs(1));
    let ship = options.shipping.as_ref().map(|shipping| {
        let job = log_job(inner, Class::Slow, ship_tick);
        // Looked at four times an interval (at most once a second): a run
        // is due `interval` after the last ended, and a coarser look made a
        // 2 s interval a 3 s one, which is the recovery point of tail
        // shipping.
        let look = (shipping.interval / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(1),
        );
        job.every(look);
        job.wake();
        job
    });
    #[cfg(feature = "async")]
    let commit = {
        let job = log_job(inner, Class::Timely, commit_tick);
        let wake = Arc::downgrade(&job);
        inner.barrier.on_lead_wanted(Box::new(move || {
            if let Some(job) = wake.upgrade() {
                job.wake();
            }
        }));
        Some(job)
    };
    #[cfg(not(feature = "async"))]
    let commit = None;
    if let Some(job) = &seal {
        let _ = inner.shared.seal_job.set(job.clone());
    }
    let tree = log_job(inner, Class::Slow, tree_tick);
    let _ = inner.shared.tree_job.set(tree.clone());
    let control = crate::control::start(inner);
    let _ = inner.jobs.set(Jobs {
        flush,
        seal,
        tree,
        control,
        epochs,
        ship,
        commit,
    });
    Ok(())
}

/// Feature `async`: leads the groups of async appends while one is first
/// in the queue and no appending thread leads (an async caller has no
/// thread of its own to spend on a write and an fdatasync).
#[cfg(feature = "async")]
fn commit_tick(inner: &Engine) {
    let crate::engine::Mode::Write(writer) = &inner.mode else {
        return;
    };
    inner.barrier.lead_submitted(
        inner.shared.options.batch_bytes_max,
        &mut |group| writer.lock().write_group(&inner.shared, group),
        &mut || inner.written(),
    );
}

/// With `Options::shipping`: ships at open (to catch up), after every seal
/// and every `interval`; after a failure waits 1 s, 2 s, 4 s, … up to
/// `backoff_max`, during which a seal does not make it try again. Appends
/// never wait for it: it reads sealed files (and, with tail shipping, whole
/// durable frames of the active segment). Looked at four times an interval.
fn ship_tick(inner: &Engine) {
    let Some(shipping) = &inner.shared.options.shipping else {
        return;
    };
    {
        let mut sig = inner.ship_signal.lock();
        let now = Instant::now();
        let backing_off = !sig.backoff.is_zero();
        let wait = if backing_off {
            sig.backoff
        } else {
            shipping.interval
        };
        let due = (sig.due && !backing_off) || sig.last.is_none_or(|l| now >= l + wait);
        if sig.stop || !due {
            return;
        }
        sig.due = false;
    }
    // Network and checksums are work that may wait, like sealing.
    let outcome = inner.ship_once(shipping);
    let mut sig = inner.ship_signal.lock();
    sig.last = Some(Instant::now());
    sig.backoff = match outcome {
        Ok(_) => std::time::Duration::ZERO,
        Err(_) => (sig.backoff * 2)
            .max(std::time::Duration::from_secs(1))
            .min(shipping.backoff_max),
    };
}

/// Under `Sealing::Background`: seals the closed segments, once woken by a
/// roll. A segment being sealed when the log closes is finished; the rest
/// wait for the next open.
fn seal_tick(inner: &Engine) {
    let shared = &inner.shared;
    if !shared.take_sealing_due() {
        return;
    }
    // The tree follows the records before they are compressed: fed from
    // the raw segment, it need not decompress the sealed file (a failure
    // is met again by whatever next needs the tree).
    let unsealed_closed = {
        let segs = shared.segments.read();
        let closed = segs.len().saturating_sub(1);
        segs[..closed].iter().any(|s| s.sealed.is_none())
    };
    if unsealed_closed {
        let _ = merkle::catch_up(shared);
    }
    let sealed = seal::seal_closed_segments(shared);
    let on_roll = shared
        .options
        .retention
        .as_ref()
        .is_some_and(|r| r.apply_on_roll);
    let outcome = match sealed {
        Ok(n) if on_roll => inner
            .apply_retention((shared.options.clock)(), false)
            .map(|_| n),
        other => other,
    };
    inner.ship_due();
    shared.record_seal_outcome(outcome);
}

/// Every second: tags each epoch as it ends, also while no one appends, so
/// that "the log ended at T" is itself sealed; makes the automatic
/// checkpoints that are due; has the tree follow the records. Work per
/// epoch and per checkpoint interval, nothing when neither is set up.
fn epoch_tick(inner: &Engine) {
    if inner.sealing_on.load(Ordering::Relaxed)
        && inner
            .writer()
            .and_then(|mut w| w.tag_ended_epochs_now(&inner.shared))
            .is_err()
    {
        return;
    }
    inner.auto_checkpoint(false);
    // The tree follows the records here, off the append path. A failure
    // is met again, and reported, by whatever next needs the tree.
    let _ = merkle::catch_up(&inner.shared);
}

/// When many records' leaf inputs wait (`Shared::pending_leaves`): feeds
/// them to the tree in memory, so that the queue stays short and the tree
/// need not read them back. The epoch tick writes the tiles.
fn tree_tick(inner: &Engine) {
    let _ = merkle::catch_up_in_memory(&inner.shared);
}

/// Under `Durability::Batched`: the fdatasync of what the last groups
/// wrote. A failure poisons the log (inside the writer).
fn sync_tick(inner: &Engine) {
    let _ = inner.writer().and_then(|mut w| w.sync(&inner.shared));
}

/// Under `Durability::Buffered`: the write of the buffer.
fn flush_tick(inner: &Engine) {
    let _ = inner.writer().and_then(|mut w| w.flush(&inner.shared));
}

/// Under `Durability::Buffered`, records wait in the writer's buffer at most
/// about this long before they are written to the OS (unless a read, sync,
/// roll or a full buffer writes them sooner): what a crash of the process
/// alone can lose.
pub(crate) const BUFFERED_WRITE_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

#[cfg(test)]
mod tests {
    //! Each job does its work with no caller driving it. The waits are
    //! bounds on a failure (a job that never runs fails the test after
    //! them), not timing goals.
    use crate::options::{Durability, Options, Sealing};
    use crate::storage::{MemStorage, Tear};
    use crate::Log;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Polls `done` every 5 ms for up to 30 s.
    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < until, "{what}: not within 30 s");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn mem_options(storage: &Arc<MemStorage>) -> Options {
        Options::default().storage(storage.clone())
    }

    #[test]
    fn batched_records_become_durable_with_no_sync_call() {
        let storage = Arc::new(MemStorage::new());
        let options = mem_options(&storage).durability(Durability::Batched {
            max_delay: Duration::from_millis(5),
        });
        let log = Log::open("/log", options).unwrap();
        let r = log.append(b"event").unwrap();
        // Only the sync job fdatasyncs after the append: a crash image that
        // loses every unsynced byte holds the record once it ran.
        eventually("the Batched fdatasync", || {
            let image = Arc::new(storage.crash_image(Tear::LoseUnsynced, 1));
            let opts = Options::default().storage(image);
            Log::open_read_only("/log", opts).is_ok_and(|l| l.get(r.seq).is_ok())
        });
        log.close().unwrap();
    }

    #[test]
    fn background_sealing_seals_a_closed_segment_with_no_later_call() {
        let storage = Arc::new(MemStorage::new());
        let options = mem_options(&storage)
            .sealing(Sealing::Background)
            .segment_bytes_max(4096);
        let log = Log::open("/log", options).unwrap();
        while log.segments().unwrap().len() < 2 {
            log.append(&[7u8; 200]).unwrap();
        }
        eventually("background sealing", || log.segments().unwrap()[0].sealed);
        log.close().unwrap();
    }
}
