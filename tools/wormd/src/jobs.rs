//! Verify jobs: `POST /v1/logs/NAME/verify` starts one on a thread of its
//! own (a verify reads every segment; it must not hold a request or an
//! async worker) and answers its id; `GET /v1/jobs/ID` answers its state,
//! progress (bytes checked of bytes to check) and, once done, the result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Jobs kept: the oldest finished ones go first past this many.
const KEPT: usize = 256;

/// One job's state.
#[derive(Default)]
pub struct Job {
    /// The log verified.
    pub log: String,
    /// Who started it.
    pub principal: String,
    checked: AtomicU64,
    total: AtomicU64,
    result: Mutex<Option<serde_json::Value>>,
}

impl Job {
    /// The job as JSON: `state` is `running` or `done`; `result` holds
    /// `ok` and either the report or the error.
    pub fn to_json(&self, id: u64) -> serde_json::Value {
        let result = self
            .result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        serde_json::json!({
            "id": id.to_string(),
            "log": self.log,
            "principal": self.principal,
            "state": if result.is_some() { "done" } else { "running" },
            "bytes_checked": self.checked.load(Ordering::Relaxed),
            "bytes_total": self.total.load(Ordering::Relaxed),
            "result": result,
        })
    }

    fn done(&self) -> bool {
        self.result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }
}

/// Every job kept.
#[derive(Default)]
pub struct Jobs {
    /// Verifications running now.
    running: Arc<std::sync::atomic::AtomicUsize>,
    jobs: Mutex<BTreeMap<u64, Arc<Job>>>,
}

impl Jobs {
    /// Starts verifying `log`; the id to ask about it with, or `None` when
    /// `max` verifications are running already (each reads every segment
    /// with threads of its own: unbounded, 600 requests ran 1,197 threads).
    pub fn start_verify(
        &self,
        name: &str,
        principal: &str,
        log: Arc<wormlog::Log>,
        max: usize,
    ) -> Option<u64> {
        let running = self.running.clone();
        let admitted = running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return None;
        }
        // Random, not counted: a token must not learn how many verify
        // jobs other logs ran (a counter would tell it).
        let id = loop {
            let mut b = [0u8; 8];
            if getrandom::getrandom(&mut b).is_ok() {
                break u64::from_le_bytes(b) >> 1;
            }
        };
        let job = Arc::new(Job {
            log: name.to_string(),
            principal: principal.to_string(),
            ..Job::default()
        });
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            while jobs.len() >= KEPT {
                let Some(old) = jobs.iter().find(|(_, j)| j.done()).map(|(k, _)| *k) else {
                    break;
                };
                jobs.remove(&old);
            }
            jobs.insert(id, job.clone());
        }
        std::thread::spawn(move || {
            let report = log.verify_with_progress(|p| {
                job.checked.fetch_max(p.bytes_checked, Ordering::Relaxed);
                job.total.store(p.bytes_total, Ordering::Relaxed);
            });
            let result = match report {
                Ok(r) => serde_json::json!({
                    "ok": true,
                    "records": r.records,
                    "segments": r.segments,
                    "first_seq": r.first_seq,
                    "head_seq": r.head.seq,
                    "head_hash": r.head.hash.to_hex(),
                    "tree_root": r.tree_root.map(|h| h.to_hex()),
                }),
                Err(e) => serde_json::json!({
                    "ok": false,
                    "tampered": matches!(e, wormlog::Error::Corrupt { .. }),
                    "error": e.to_string(),
                }),
            };
            // Its place frees before it reads as done: whoever saw it done
            // may start the next.
            running.fetch_sub(1, Ordering::AcqRel);
            *job.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
        });
        Some(id)
    }

    /// Verifications running now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::Acquire)
    }

    /// The job `id`, if kept.
    pub fn get(&self, id: u64) -> Option<Arc<Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifications_past_the_bound_are_refused_until_one_ends() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(wormlog::Log::open(dir.path(), wormlog::Options::default()).unwrap());
        let batch: Vec<Vec<u8>> = (0..50_000)
            .map(|i| format!("record {i}").into_bytes())
            .collect();
        log.append_batch(&batch).unwrap();
        let jobs = Jobs::default();
        let first = jobs.start_verify("a", "p", log.clone(), 1).unwrap();
        // The first is still reading 50,000 records.
        assert!(jobs.start_verify("a", "p", log.clone(), 1).is_none());
        while jobs.get(first).unwrap().to_json(first)["state"] != "done" {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(jobs.start_verify("a", "p", log, 1).is_some());
    }
}
