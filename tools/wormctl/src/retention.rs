//! `wormctl retention DIR [--dry-run]`: drops whole expired sealed segments
//! under the policy given, and records them in the hash anchor so that the
//! rest of the chain still verifies. Needs the writer's lock.

use crate::fail::Fail;
use crate::out::{self, Out};
use std::path::PathBuf;
use std::time::Duration;
use wormlog::{Options, Retention};

#[derive(clap::Args)]
pub struct Args {
    /// The log directory (no writer may have it open).
    dir: PathBuf,
    /// Drop sealed segments whose newest record is older than this (e.g. 400d).
    #[arg(long, value_parser = out::parse_duration)]
    max_age: Option<Duration>,
    /// Drop the oldest sealed segments while the log is larger than this many bytes on disk.
    #[arg(long, value_name = "BYTES")]
    max_total_bytes: Option<u64>,
    /// Never drop a segment whose newest record is younger than this (overrides the others).
    #[arg(long, value_parser = out::parse_duration)]
    min_age: Option<Duration>,
    /// Say what would be dropped, and drop nothing.
    #[arg(long)]
    dry_run: bool,
    /// Drop without asking. Without it, the plan is shown first and a
    /// terminal is asked to confirm; with no terminal to ask, nothing is
    /// dropped (exit 2).
    #[arg(long, short = 'y')]
    yes: bool,
}

pub fn run(a: Args) -> Result<(), Fail> {
    if a.max_age.is_none() && a.max_total_bytes.is_none() {
        return Err(Fail::usage(
            "give a policy: --max-age and/or --max-total-bytes (and optionally --min-age)",
        ));
    }
    let mut policy = Retention::default();
    if let Some(d) = a.max_age {
        policy = policy.max_age(d);
    }
    if let Some(b) = a.max_total_bytes {
        policy = policy.max_total_bytes(b);
    }
    if let Some(d) = a.min_age {
        policy = policy.min_age(d);
    }
    let options = Options::default().retention(policy);
    let now = out::now_ns();
    // A dry run reads: a writer's open would record the policy given (a
    // dry run raised the recorded minimum age for good, the eleventh red
    // team found), and a policy is never lowered after.
    let plan = |options: Options| -> Result<_, Fail> {
        let log = crate::open::read_only_with(&a.dir, options)?;
        Ok((log.retention_plan(now)?, log.legal_hold()?))
    };
    let (report, hold) = if a.dry_run {
        plan(options)?
    } else {
        if !a.yes {
            let (report, hold) = plan(options.clone())?;
            if !report.dropped_segments.is_empty() && !report.held {
                say_report(&report, hold, true)?;
                confirm(&report)?;
            }
        }
        let log = crate::open::writer(&a.dir, options)?;
        let report = log.apply_retention(now)?;
        let hold = log.legal_hold()?;
        log.close()?;
        (report, hold)
    };
    say_report(&report, hold, a.dry_run)
}

/// Asks the terminal whether to drop what `report` plans; refuses where
/// there is no terminal to ask (a script says `--yes`).
fn confirm(report: &wormlog::RetentionReport) -> Result<(), Fail> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(Fail::usage(
            "nothing dropped: retention deletes records for good; run it with --yes to drop \
             what the plan above says (or on a terminal, to be asked)",
        ));
    }
    eprint!(
        "drop {} segment(s), {} records, for good? [y/N] ",
        report.dropped_segments.len(),
        report.dropped_records
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Fail::io("reading the answer", e))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(Fail::usage("nothing dropped: not confirmed"))
    }
}

/// What was dropped, or (`planned`) what would be.
fn say_report(
    report: &wormlog::RetentionReport,
    hold: Option<String>,
    planned: bool,
) -> Result<(), Fail> {
    let mut out = Out::new();
    let verb = if planned { "would drop" } else { "dropped" };
    if report.held {
        let reason = hold.unwrap_or_default();
        out.line(format!(
            "legal hold set ({}): nothing {}",
            out::terminal_text(&reason),
            if planned {
                "would be dropped"
            } else {
                "dropped"
            }
        ))?;
    } else {
        out.line(format!(
            "{verb} {} segment(s) {:?}: {} records, {} freed; the log {} at seq {}",
            report.dropped_segments.len(),
            report.dropped_segments,
            report.dropped_records,
            out::size(report.freed_bytes),
            if planned { "would begin" } else { "begins" },
            report.first_seq
        ))?;
    }
    Ok(())
}
