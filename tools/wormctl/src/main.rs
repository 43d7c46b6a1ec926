//! wormctl: inspect, dump, verify, follow and administer wormlog audit logs.
//! One module per subcommand; `cli` parses and dispatches, `fail` maps
//! errors to exit codes (0 intact, 1 tampered or corrupt, 2 usage or I/O).

mod access;
mod append;
mod checkpoint;
mod cli;
mod control;
mod demo;
mod dump;
mod fail;
mod hold;
mod keygen;
mod open;
mod out;
mod proof;
mod repair;
mod retention;
mod seal;
mod setup_keys;
#[cfg(feature = "s3")]
mod ship;
mod stat;
mod tail;
mod tlog_proof;
mod verify;
mod witness;

fn main() -> std::process::ExitCode {
    cli::main()
}
