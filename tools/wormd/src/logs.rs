//! The configured logs, each opened once and shared by every listener,
//! all on the engine's one background pool (no thread of a log's own).
//! Each has a bounded queue: past `queue_depth` waiting requests the next
//! is refused (429) rather than buffered, so memory stays bounded under
//! any load.

use crate::config::{Config, DurabilityName, LogConfig, SealingName, WitnessConfig};
use crate::metrics::LogMetrics;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wormlog::{CheckpointKey, Durability, Log, Options, Retention, Sealing};

/// One served log.
pub struct Served {
    /// Its name in URLs.
    pub name: String,
    /// The open log.
    pub log: Arc<Log>,
    /// Signs `/checkpoint` (and proofs, with `proofs`).
    pub key: Option<CheckpointKey>,
    /// Receipts carry a tlog-proof.
    pub proofs: bool,
    /// Its counters.
    pub metrics: LogMetrics,
    queue: Arc<Semaphore>,
    /// Places for this log's streamed reads (`reads_max`).
    pub reads: Arc<Semaphore>,
    /// The last served checkpoint note, and when it was made: a note is
    /// reused for a second (tlog-tiles lets a checkpoint be cached) so a
    /// busy monitor does not cost an fdatasync a request.
    checkpoint: note_cache::Cache,
}

/// A place in a log's queue; dropping it leaves the queue.
pub struct Slot<'a> {
    _permit: OwnedSemaphorePermit,
    served: &'a Served,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.served.metrics.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Served {
    /// A place in the queue, or `None` when it is full.
    pub fn enter(&self) -> Option<Slot<'_>> {
        let permit = self.queue.clone().try_acquire_owned().ok()?;
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            _permit: permit,
            served: self,
        })
    }

    /// A place in the queue, waiting for one (syslog: TCP's flow control
    /// slows the sender meanwhile).
    pub async fn enter_wait(&self) -> Slot<'_> {
        let permit = self
            .queue
            .clone()
            .acquire_owned()
            .await
            .expect("a log's queue is never closed");
        self.metrics.queued.fetch_add(1, Ordering::Relaxed);
        Slot {
            _permit: permit,
            served: self,
        }
    }

    /// The note `/checkpoint` serves: signed with the log's key where it
    /// has one (else the unsigned body), of the log's durable head.
    pub fn checkpoint_note(&self) -> wormlog::Result<String> {
        if let Some(note) = self.checkpoint.fresh(self.log.head().seq) {
            return Ok(note);
        }
        Ok(self.new_checkpoint()?.1)
    }

    /// A new checkpoint of the durable head (the engine syncs first), kept
    /// for `/checkpoint`: its size and note.
    fn new_checkpoint(&self) -> wormlog::Result<(u64, String)> {
        let cp = self.log.checkpoint()?;
        let note = match &self.key {
            Some(k) => cp.sign(k),
            None => cp.body(),
        };
        self.checkpoint.put(cp.seq, note.clone());
        Ok((cp.seq, note))
    }

    /// A tree size no larger than what is durable, and at least `want`
    /// where the log has that much durable (a new checkpoint is made when
    /// the last served one is smaller). Proofs and tiles go no further:
    /// what a crash may take back is never vouched for, signed or not.
    pub fn durable_size(&self, want: u64) -> wormlog::Result<u64> {
        let size = self.checkpoint.size();
        if size >= want {
            return Ok(size);
        }
        Ok(self.new_checkpoint()?.0)
    }
}

mod note_cache {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// How long a served checkpoint is reused.
    const FRESH: Duration = Duration::from_secs(1);

    #[derive(Default)]
    pub struct Cache(Mutex<Option<(u64, Instant, String)>>);

    impl Cache {
        /// The cached note, if it names `head` or is under a second old.
        pub fn fresh(&self, head: u64) -> Option<String> {
            let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let (seq, at, note) = g.as_ref()?;
            (*seq == head || at.elapsed() < FRESH).then(|| note.clone())
        }

        /// The size of the last note made (0 before the first).
        pub fn size(&self) -> u64 {
            let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
            g.as_ref().map_or(0, |(seq, _, _)| *seq)
        }

        pub fn put(&self, seq: u64, note: String) {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((seq, Instant::now(), note));
        }
    }
}

/// Every configured log, by name.
pub struct Logs {
    by_name: BTreeMap<String, Arc<Served>>,
}

impl Logs {
    /// Opens every log of `cfg` (creating missing directories). The first
    /// that fails to open stops the start, naming it.
    pub fn open(cfg: &Config) -> Result<Logs, String> {
        let mut by_name = BTreeMap::new();
        for l in &cfg.logs {
            let started = Instant::now();
            let served = open_one(l, cfg)?;
            crate::say::info(
                "log opened",
                &[
                    ("log", l.name.as_str()),
                    ("dir", &l.dir.display().to_string()),
                    ("head", &served.log.head().seq.to_string()),
                    ("ms", &started.elapsed().as_millis().to_string()),
                ],
            );
            by_name.insert(l.name.clone(), Arc::new(served));
        }
        Ok(Logs { by_name })
    }

    /// The log named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Served>> {
        self.by_name.get(name)
    }

    /// Every log, by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Served>> {
        self.by_name.values()
    }

    /// Closes every log (each syncs what it holds). Called once every
    /// request has finished; a log still shared is synced instead.
    pub fn close(self) {
        for (name, served) in self.by_name {
            let result = match Arc::try_unwrap(served) {
                Ok(s) => match Arc::try_unwrap(s.log) {
                    Ok(log) => log.close(),
                    Err(log) => log.sync(),
                },
                Err(s) => s.log.sync(),
            };
            match result {
                Ok(()) => crate::say::info("log closed", &[("log", &name)]),
                Err(e) => crate::say::error(
                    "log close failed",
                    &[("log", &name), ("error", &e.to_string())],
                ),
            }
        }
    }
}

fn open_one(l: &LogConfig, cfg: &Config) -> Result<Served, String> {
    let key = l
        .checkpoint_key
        .as_deref()
        .map(|p| load_key(l, p))
        .transpose()?;
    let opts = options(l, cfg)?;
    let log = Log::open(&l.dir, opts)
        .map_err(|e| format!("log {:?} ({}): {e}", l.name, l.dir.display()))?;
    Ok(Served {
        name: l.name.clone(),
        log: Arc::new(log),
        key,
        proofs: l.proofs,
        metrics: LogMetrics::default(),
        queue: Arc::new(Semaphore::new(cfg.server.queue_depth.max(1))),
        reads: Arc::new(Semaphore::new(cfg.server.reads_max)),
        checkpoint: Default::default(),
    })
}

/// The engine's options for `l`, keys and witnesses read, checked as
/// `Log::open` would check them: what `wormd check-config` runs, so that
/// a config it passes opens.
pub fn options(l: &LogConfig, cfg: &Config) -> Result<Options, String> {
    let mut opts = Options::default()
        .durability(match l.durability {
            DurabilityName::Sync => Durability::Sync,
            DurabilityName::Batched => Durability::Batched {
                max_delay: Duration::from_millis(l.batch_delay_ms),
            },
            DurabilityName::Buffered => Durability::Buffered,
        })
        .background_threads(cfg.server.background_threads);
    if let Some(bytes) = l.segment_bytes_max {
        opts = opts.segment_bytes_max(bytes);
    }
    if let Some(age) = &l.retention_max_age {
        // Checked when the config was read.
        let age = humantime::parse_duration(age).map_err(|e| e.to_string())?;
        opts = opts.retention(Retention::default().max_age(age));
    }
    if let (true, Some(path)) = (l.proofs, &l.checkpoint_key) {
        // The engine takes its own copy: keys are not Clone.
        opts = opts.proofs(load_key(l, path)?);
    }
    opts = opts.sealing(match l.sealing {
        SealingName::Background => Sealing::Background,
        SealingName::Inline => Sealing::Inline,
        SealingName::Manual => Sealing::Manual,
    });
    if let (Some(every), Some(path)) = (l.checkpoint_every_secs, &l.checkpoint_key) {
        let sink = Arc::new(wormlog::FileSink {
            path: l
                .checkpoint_file
                .clone()
                .expect("set when the config was read"),
        });
        opts = opts.auto_checkpoints(load_key(l, path)?, Duration::from_secs(every.max(1)), sink);
        let witnesses = l
            .witnesses
            .iter()
            .map(|w| load_witness(l, w))
            .collect::<Result<_, _>>()?;
        opts = opts.checkpoint_witnesses(witnesses);
    }
    if let Some(url) = &l.ship_to {
        let mut target = wormlog_s3::S3Target::from_env(url)
            .map_err(|e| format!("log {:?}: ship_to {url}: {e}", l.name))?
            .with_tail(true);
        if let Some(t) = &l.ship_retain_for {
            // Checked when the config was read.
            target = target.retain_for(humantime::parse_duration(t).map_err(|e| e.to_string())?);
        }
        let shipping =
            wormlog::Shipping::new(target).interval(Duration::from_secs(l.ship_every_secs.max(1)));
        opts = opts.shipping(shipping);
    }
    opts.validate()
        .map_err(|e| format!("log {:?}: {e}", l.name))?;
    Ok(opts)
}

/// A witness of the config: its URL and public key.
fn load_witness(l: &LogConfig, w: &WitnessConfig) -> Result<wormlog::Witness, String> {
    let at = format!(
        "log {:?}: witness {} key {}",
        l.name,
        w.url,
        w.key.display()
    );
    let text = std::fs::read_to_string(&w.key)
        .map_err(|e| format!("{at}: {e} (wormctl witness keygen writes one)"))?;
    let key = wormlog::WitnessPublicKey::from_vkey_string(text.trim())
        .map_err(|e| format!("{at}: {e}"))?;
    Ok(wormlog::Witness {
        url: w.url.clone(),
        key,
    })
}

/// The private key in `path` (wormctl keygen's format).
pub fn load_key(l: &LogConfig, path: &std::path::Path) -> Result<CheckpointKey, String> {
    let at = format!("log {:?}: checkpoint_key {}", l.name, path.display());
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{at}: {e} (wormctl keygen NAME writes one)"))?;
    CheckpointKey::from_private_string(text.trim()).map_err(|e| format!("{at}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_the_next_request_until_one_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::config::Config::parse(
            &dir.path().join("wormd.toml"),
            "[server]\nqueue_depth = 2\n[[log]]\nname = \"a\"\ndir = \"a\"\n",
        )
        .unwrap();
        let logs = Logs::open(&cfg).unwrap();
        let a = logs.get("a").unwrap();
        let one = a.enter().unwrap();
        let _two = a.enter().unwrap();
        assert!(a.enter().is_none(), "a third waiting request is refused");
        assert_eq!(a.metrics.queued.load(Ordering::Relaxed), 2);
        drop(one);
        assert!(a.enter().is_some());
    }
}
