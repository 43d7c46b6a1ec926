//! The command line: subcommands and dispatch.

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "wormctl",
    version,
    about = "Inspect, dump, verify, follow and administer wormlog audit logs",
    after_help = "Exit codes: 0 success (for verify: intact), 1 tampered or corrupt \
                  data found, 2 usage or I/O error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Times given without a zone (2026-11-22 10:00, 06:40, today) are UTC,
    /// not the system's zone (TZ). Times printed are always UTC (RFC 3339
    /// with Z), so that logs of hosts in several zones compare as printed.
    #[arg(long, global = true)]
    utc: bool,
    /// For s3:// URLs: the AWS profile to read from ~/.aws/config and
    /// ~/.aws/credentials (else AWS_PROFILE, else default); its keys win
    /// over those in the environment.
    #[cfg(feature = "s3")]
    #[arg(long, global = true, value_name = "NAME", help_heading = "S3")]
    profile: Option<String>,
    /// For s3:// URLs: the endpoint (else AWS_ENDPOINT_URL_S3,
    /// AWS_ENDPOINT_URL, the profile's endpoint_url, else AWS's).
    #[cfg(feature = "s3")]
    #[arg(long, global = true, value_name = "URL", help_heading = "S3")]
    endpoint_url: Option<String>,
    /// For s3:// URLs: the region (else AWS_REGION, AWS_DEFAULT_REGION, the
    /// profile's region, else us-east-1).
    #[cfg(feature = "s3")]
    #[arg(long, global = true, value_name = "REGION", help_heading = "S3")]
    region: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// One line per segment, totals, the retention anchor and the legal hold.
    Stat(crate::stat::Args),
    /// Print records of a log directory, one segment file, or `-` (stdin).
    Dump(crate::dump::Args),
    /// Verify a log directory or one segment file; optionally against a
    /// signed checkpoint.
    Verify(crate::verify::Args),
    /// The last records of a log; with -f, follow new ones as they commit.
    Tail(crate::tail::Args),
    /// Close the active segment and seal (compress) every closed segment.
    Seal(crate::seal::Args),
    /// Drop whole expired sealed segments, keeping a hash anchor.
    Retention(crate::retention::Args),
    /// Set, clear or show the legal hold that stops retention.
    Hold(crate::hold::Args),
    /// Write a realistic audit trail from several threads, seal, verify and
    /// inspect it, with timings.
    Demo(crate::demo::Args),
    /// Open a log whose active segment holds damaged records: copy the
    /// damaged file aside and go on after the last intact record, recorded
    /// in the log (--dry-run: say what it would do).
    Repair(crate::repair::Args),
    /// Make an Ed25519 key pair for signing checkpoints.
    Keygen(crate::keygen::Args),
    /// Write a signed checkpoint of a log's head (after verifying the log).
    Checkpoint(crate::checkpoint::Args),
    /// Set up forward-secure sealing: print the verification key once. Run
    /// again on a sealed log, rotates the key (verify then takes both).
    SetupKeys(crate::setup_keys::Args),
    /// Copy sealed segments and the anchor to an S3 bucket under Object
    /// Lock (feature s3, on by default).
    #[cfg(feature = "s3")]
    Ship(crate::ship::Args),
    /// Restore a log from its copy in an S3 bucket into a new directory,
    /// verifying it (feature s3, on by default).
    #[cfg(feature = "s3")]
    Restore(crate::ship::RestoreArgs),
    /// Create an S3 bucket with Object Lock on, or check that one has it
    /// (feature s3, on by default).
    #[cfg(feature = "s3")]
    Bucket(crate::ship::BucketArgs),
    /// Append one record per line of standard input (creating the log if
    /// missing); print one receipt per record as a JSON line.
    Append(crate::append::Args),
    /// Print a record and its Merkle inclusion proof (against the head or
    /// a signed checkpoint); --json writes a proof file.
    Prove(crate::proof::ProveArgs),
    /// Check a proof offline: a tlog-proof (from `append --proof-key`)
    /// with the log's public key or a trust policy, or a `prove --json`
    /// proof against a signed checkpoint.
    CheckProof(crate::proof::CheckProofArgs),
    /// Run a witness (C2SP tlog-witness): `witness keygen`, `witness serve`.
    #[command(subcommand)]
    Witness(crate::witness::Command),
    /// Prove (from a log) or check (a proof file) that a newer signed
    /// checkpoint's tree extends an older one's.
    Consistency(crate::proof::ConsistencyArgs),
    /// Write the log as a static C2SP tlog: checkpoint, tiles, entry bundles.
    ExportTlog(crate::proof::ExportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `wormctl man > wormctl.1`).
    Man,
}

/// `wormctl completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<(), crate::fail::Fail> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "wormctl", &mut out);
    crate::out::write_stdout(&out)
}

/// `wormctl man`: wormctl(1), with one section per subcommand.
fn man() -> Result<(), crate::fail::Fail> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    let io = |e| crate::fail::Fail::io("man page", e);
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .map_err(io)?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = sub.get_name();
        out.extend_from_slice(format!(".SH \"WORMCTL {}\"\n", name.to_uppercase()).as_bytes());
        let sub = sub.clone().bin_name(format!("wormctl {name}"));
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(&mut out).map_err(io)?;
        page.render_description_section(&mut out).map_err(io)?;
        page.render_options_section(&mut out).map_err(io)?;
    }
    out.extend_from_slice(MAN_TAIL.as_bytes());
    crate::out::write_stdout(&out)
}

/// The man page's EXAMPLES and EXIT STATUS sections (roff).
const MAN_TAIL: &str = r#".SH EXAMPLES
.TP
Check a log, its sealing and two checkpoints kept elsewhere:
wormctl verify /var/log/audit \-\-verify\-key audit.verify\-key \-\-checkpoint cp\-2026\-11.txt \-\-checkpoint cp\-2026\-12.txt \-\-pubkey auditor.pub
.TP
Today's failed logins since 06:40, as JSON:
wormctl dump /var/log/audit \-\-since 06:40 \-\-match outcome=failure \-o json
.TP
Follow the log, payloads only:
wormctl tail \-f \-o cat /var/log/audit
.TP
Place a legal hold on a log a running service writes (through its control socket):
wormctl hold set "case 2026\-17" /var/log/audit
.TP
Append from any program, one record per line, one receipt per record:
printf '{"actor":"alice","action":"login"}\\n' | wormctl append /var/log/audit \-\-json
.TP
Ship sealed segments to a bucket with Object Lock:
wormctl bucket create s3://audit\-copies && wormctl ship /var/log/audit \-\-to s3://audit\-copies/host1
.SH "EXIT STATUS"
.TP
.B 0
Success; for verify, the log is intact (and holds every checkpoint given).
.TP
.B 1
Tampered or corrupt data found: a changed, removed, reordered or added record, a broken seal, a checkpoint the log no longer holds, a copy that differs from what was shipped.
.TP
.B 2
The operator's mistake or an I/O error: a wrong key or checkpoint of another log, a missing file, a bad flag, a locked log, a refused request; the message says what to do. A faithful copy is never exit 1.
"#;

pub fn main() -> ExitCode {
    // --since/--until are parsed with the arguments, so the zone they are
    // read in is chosen before (the flag is declared below, for help).
    crate::out::set_input_utc(std::env::args_os().any(|a| a == "--utc"));
    // clap prints help and version (exit 0) and usage errors (exit 2) itself.
    let cli = Cli::parse();
    let _ = cli.utc;
    #[cfg(feature = "s3")]
    crate::ship::set_overrides(wormlog_s3::S3Overrides {
        profile: cli.profile,
        endpoint: cli.endpoint_url,
        region: cli.region,
    });
    let result = match cli.command {
        Command::Stat(a) => crate::stat::run(a),
        Command::Dump(a) => crate::dump::run(a),
        Command::Verify(a) => crate::verify::run(a),
        Command::Tail(a) => crate::tail::run(a),
        Command::Seal(a) => crate::seal::run(a),
        Command::Retention(a) => crate::retention::run(a),
        Command::Hold(a) => crate::hold::run(a),
        Command::Repair(a) => crate::repair::run(a),
        Command::Demo(a) => crate::demo::run(a),
        Command::Keygen(a) => crate::keygen::run(a),
        Command::Checkpoint(a) => crate::checkpoint::run(a),
        Command::SetupKeys(a) => crate::setup_keys::run(a),
        #[cfg(feature = "s3")]
        Command::Ship(a) => crate::ship::run(a),
        #[cfg(feature = "s3")]
        Command::Restore(a) => crate::ship::restore(a),
        #[cfg(feature = "s3")]
        Command::Bucket(a) => crate::ship::bucket(a),
        Command::Append(a) => crate::append::run(a),
        Command::Prove(a) => crate::proof::prove(a),
        Command::CheckProof(a) => crate::proof::check_proof(a),
        Command::Witness(c) => crate::witness::run(c),
        Command::Consistency(a) => crate::proof::consistency(a),
        Command::ExportTlog(a) => crate::proof::export(a),
        Command::Completions { shell } => completions(shell),
        Command::Man => man(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(),
    }
}
