//! Who can change a log behind its writer, on the real file system: the
//! engine sets its own modes whatever the umask, a writer refuses a log
//! another user owns or everyone may write, and no file in a log directory
//! is ever opened through a symbolic link (format-spec.md §1, "Owners,
//! modes and links").
//!
//! The umask is per process and tests run as threads of one, so the umask
//! cases run in a child: this test binary started again with
//! `WORMLOG_PERMISSIONS_CHILD` naming what it is to do (see `child`). The
//! other-user cases run a child as `nobody` with setpriv(1), which needs
//! root: CI runs as root, and the tests fail, not skip, without it.

mod common;
use common::{files_with, manual_clock};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;
use std::time::Duration;
use wormlog::{Error, Log, Options, Retention, Sealing};

const CHILD: &str = "WORMLOG_PERMISSIONS_CHILD";
const CHILD_DIR: &str = "WORMLOG_PERMISSIONS_DIR";
const CHILD_UMASK: &str = "WORMLOG_PERMISSIONS_UMASK";
const SEC: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * SEC;

/// Options that roll often, and retention that drops what is a minute old.
fn options() -> (std::sync::Arc<std::sync::atomic::AtomicU64>, Options) {
    let (now, clock) = manual_clock(T0);
    let options = Options::default()
        .clock(clock)
        .sealing(Sealing::Manual)
        .segment_bytes_max(4096)
        .seal_frame_bytes(4096)
        .retention(Retention::default().max_age(Duration::from_secs(60)));
    (now, options)
}

/// A log with every kind of file the engine writes: sealed segments, raw
/// closed and active segments, an anchor from a retention run, a legal hold
/// and the lock file.
fn make_full_log(dir: &Path) {
    let (now, options) = options();
    let log = Log::open(dir, options).unwrap();
    for i in 0..120u64 {
        now.fetch_add(SEC, Ordering::SeqCst);
        log.append(format!("event {i:04}, padded to fill a few segments").as_bytes())
            .unwrap();
    }
    log.seal().unwrap();
    let report = log.apply_retention(now.load(Ordering::SeqCst)).unwrap();
    assert!(
        !report.dropped_segments.is_empty(),
        "retention dropped some"
    );
    log.set_legal_hold("case 17").unwrap();
    for i in 0..60u64 {
        now.fetch_add(SEC, Ordering::SeqCst);
        log.append(format!("later event {i:04}, padded as well").as_bytes())
            .unwrap();
    }
    log.close().unwrap();
    assert!(dir.join("wormlog.anchor").exists() && dir.join("wormlog.hold").exists());
}

/// The child's side: does what `WORMLOG_PERMISSIONS_CHILD` names in
/// `WORMLOG_PERMISSIONS_DIR`, prints one line saying how it went, and exits.
/// Run as a test so that it lives in this binary; without the variable it
/// does nothing.
#[test]
fn child() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(CHILD_DIR).unwrap());
    match role.as_str() {
        "create" => {
            let mask = u32::from_str_radix(&std::env::var(CHILD_UMASK).unwrap(), 8).unwrap();
            rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask));
            make_full_log(&dir);
            println!("CHILD: created");
        }
        "append" => match Log::open(&dir, Options::default().create_if_missing(false)) {
            Ok(log) => {
                log.append(b"appended by another user").unwrap();
                log.close().unwrap();
                println!("CHILD: appended");
            }
            Err(e) => println!("CHILD: refused: {e}"),
        },
        other => panic!("unknown child role {other}"),
    }
    std::process::exit(0);
}

/// The one line the child printed after `CHILD: `.
fn child_said(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        // The harness's `test child ... ` may begin the same line.
        .find_map(|l| l.split_once("CHILD: ").map(|(_, said)| said))
        .unwrap_or_else(|| panic!("the child said nothing:\n{stdout}"))
        .to_owned()
}

fn child_command(exe: &Path, role: &str, dir: &Path) -> Command {
    let mut c = Command::new(exe);
    c.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .env(CHILD_DIR, dir);
    c
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Every file in `dir` with its mode, for messages.
fn modes(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                format!("{:04o}", mode(&e.path())),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_engine_sets_its_own_modes_whatever_the_umask() {
    for umask in ["000", "077"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("log");
        let out = child_command(&std::env::current_exe().unwrap(), "create", &dir)
            .env(CHILD_UMASK, umask)
            .output()
            .unwrap();
        assert_eq!(child_said(&out), "created");
        let all = modes(&dir);
        assert_eq!(mode(&dir), 0o750, "umask {umask}: the directory");
        let expect = |name: &str| {
            if name.ends_with(".wlog.zst") {
                0o444
            } else {
                0o640
            }
        };
        for (name, _) in &all {
            assert_eq!(
                mode(&dir.join(name)),
                expect(name),
                "umask {umask}: {name} (all: {all:?})"
            );
        }
        for kind in [
            ".wlog.zst",
            ".wlog",
            "wormlog.anchor",
            "wormlog.hold",
            "wormlog.lock",
        ] {
            assert!(
                all.iter().any(|(n, _)| n.ends_with(kind)),
                "umask {umask}: no {kind} made: {all:?}"
            );
        }
    }
}

/// The uid and gid of `nobody`, failing the test where there is none.
fn nobody() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "nobody"])
            .output()
            .expect("id(1) runs");
        assert!(out.status.success(), "this test needs a user `nobody`");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// Runs the child as `nobody`, from a copy of this binary that `nobody`
/// may execute (the build directory may not be open to it).
fn run_as_nobody(tmp: &Path, role: &str, dir: &Path) -> Output {
    assert_eq!(
        rustix::process::geteuid().as_raw(),
        0,
        "this test runs a child as another user, which takes root (CI runs as root)"
    );
    let which = Command::new("sh")
        .args(["-c", "command -v setpriv"])
        .output()
        .unwrap();
    assert!(
        which.status.success(),
        "setpriv(1) is missing: install util-linux (.ci/run does) to run a child as nobody"
    );
    let exe = tmp.join("child-exe");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let (uid, gid) = nobody();
    let child = child_command(&exe, role, dir);
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .arg(child.get_program())
        .args(child.get_args());
    for (k, v) in child.get_envs() {
        c.env(k, v.unwrap());
    }
    c.output().unwrap()
}

/// A tempdir that `nobody` may enter (tempfile makes them 0700).
fn tempdir_open_to_all() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    tmp
}

fn newest_raw_segment(dir: &Path) -> PathBuf {
    files_with(dir, ".wlog").into_iter().max().unwrap()
}

#[test]
fn another_user_cannot_open_a_roots_log_as_writer_even_with_open_modes() {
    let tmp = tempdir_open_to_all();
    let dir = tmp.path().join("log");
    make_full_log(&dir);
    // What a log made under umask 000 by an engine that trusted the umask
    // looked like.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !p.to_string_lossy().ends_with(".zst") {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
        }
    }
    let active = newest_raw_segment(&dir);
    let before = fs::read(&active).unwrap();
    let said = run_as_nobody(tmp.path(), "append", &dir);
    let said = child_said(&said);
    assert!(
        said.starts_with("refused: ")
            && said.contains(&format!("{}: unsafe permissions", dir.display())),
        "{said}"
    );
    assert!(said.contains("owned by uid 0"), "{said}");
    assert_eq!(
        fs::read(&active).unwrap(),
        before,
        "the active segment changed"
    );
}

/// Opens `dir` as writer and expects `UnsafePermissions` naming `path`.
#[track_caller]
fn writer_refuses(dir: &Path, path: &Path) -> String {
    match Log::open(dir, Options::default().create_if_missing(false)) {
        Err(Error::UnsafePermissions { path: p, detail }) if p == path => detail,
        Err(e) => panic!(
            "expected unsafe permissions of {}, got: {e}",
            path.display()
        ),
        Ok(_) => panic!("the writer opened a log with {} unsafe", path.display()),
    }
}

#[test]
fn a_writer_refuses_a_log_whose_files_another_user_owns() {
    let (uid, gid) = nobody();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_full_log(&dir);
    let sealed = files_with(&dir, ".wlog.zst").into_iter().next().unwrap();
    for path in [
        newest_raw_segment(&dir),
        sealed,
        dir.join("wormlog.anchor"),
        dir.join("wormlog.hold"),
        dir.join("wormlog.lock"),
        dir.clone(),
    ] {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        let detail = writer_refuses(&dir, &path);
        assert!(detail.contains(&format!("owned by uid {uid}")), "{detail}");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
    }
    // The same log, back to its owner, is fine; and a reader (an auditor
    // of another uid, say) is never refused for owners or modes.
    Log::open(&dir, Options::default())
        .unwrap()
        .close()
        .unwrap();
    std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
    Log::open_read_only(&dir, Options::default())
        .unwrap()
        .verify()
        .unwrap();
}

#[test]
fn a_writer_refuses_world_writable_files_and_takes_group_write_from_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_full_log(&dir);
    let active = newest_raw_segment(&dir);
    let before = fs::read(&active).unwrap();
    for path in [active.clone(), dir.join("wormlog.hold"), dir.clone()] {
        let was = mode(&path);
        fs::set_permissions(&path, fs::Permissions::from_mode(was | 0o002)).unwrap();
        let detail = writer_refuses(&dir, &path);
        assert!(
            detail.contains("world-writable") && detail.contains("chmod o-w"),
            "{detail}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(was)).unwrap();
    }
    assert_eq!(fs::read(&active).unwrap(), before);
    // Group write, as the common umask 002 gave an older log: taken away.
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o775)).unwrap();
    fs::set_permissions(&active, fs::Permissions::from_mode(0o664)).unwrap();
    Log::open(&dir, Options::default())
        .unwrap()
        .close()
        .unwrap();
    assert_eq!(mode(&dir), 0o755);
    assert_eq!(mode(&active), 0o644);
}

/// Moves `path` out of the log directory into `outside` and puts a
/// symbolic link to it in its place; returns the moved file.
fn replace_with_symlink(path: &Path, outside: &Path) -> PathBuf {
    let target = outside.join(path.file_name().unwrap());
    fs::copy(path, &target).unwrap();
    fs::remove_file(path).unwrap();
    symlink(&target, path).unwrap();
    target
}

#[track_caller]
fn is_symlink_error(r: Result<impl std::fmt::Debug, Error>, path: &Path) {
    match r {
        Err(Error::Symlink { path: p }) if p == path => {}
        other => panic!(
            "expected a symlink error naming {}: {other:?}",
            path.display()
        ),
    }
}

#[test]
fn a_symlinked_active_segment_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("log"), tmp.path().join("outside"));
    fs::create_dir(&outside).unwrap();
    make_full_log(&dir);
    let active = newest_raw_segment(&dir);
    let target = replace_with_symlink(&active, &outside);
    let before = fs::read(&target).unwrap();
    is_symlink_error(Log::open(&dir, Options::default()), &active);
    is_symlink_error(Log::open_read_only(&dir, Options::default()), &active);
    assert_eq!(
        fs::read(&target).unwrap(),
        before,
        "appended through the link"
    );
    let message = Log::open(&dir, Options::default()).unwrap_err().to_string();
    assert!(
        message.contains("is a symbolic link; wormlog never follows links in a log directory"),
        "{message}"
    );
}

#[test]
fn a_symlinked_sealed_segment_fails_verification_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("log"), tmp.path().join("outside"));
    fs::create_dir(&outside).unwrap();
    make_full_log(&dir);
    let sealed = files_with(&dir, ".wlog.zst").into_iter().max().unwrap();
    replace_with_symlink(&sealed, &outside);
    is_symlink_error(
        Log::open_read_only(&dir, Options::default()).and_then(|l| l.verify()),
        &sealed,
    );
    is_symlink_error(Log::open(&dir, Options::default()), &sealed);
}

#[test]
fn a_symlinked_hold_file_is_refused_and_its_target_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("log"), tmp.path().join("outside"));
    fs::create_dir(&outside).unwrap();
    make_full_log(&dir);
    let hold = dir.join("wormlog.hold");
    fs::remove_file(&hold).unwrap();
    let secret = outside.join("shadow");
    fs::write(&secret, "root:$6$secret-hash:19000:0:99999:7:::\n").unwrap();
    symlink(&secret, &hold).unwrap();
    let reader = Log::open_read_only(&dir, Options::default()).unwrap();
    is_symlink_error(reader.legal_hold(), &hold);
    is_symlink_error(Log::open(&dir, Options::default()), &hold);
}

#[test]
fn a_symlinked_anchor_file_is_refused_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("log"), tmp.path().join("outside"));
    fs::create_dir(&outside).unwrap();
    make_full_log(&dir);
    let anchor = dir.join("wormlog.anchor");
    replace_with_symlink(&anchor, &outside);
    is_symlink_error(Log::open_read_only(&dir, Options::default()), &anchor);
    is_symlink_error(Log::open(&dir, Options::default()), &anchor);
}

#[test]
fn a_symlinked_lock_file_is_refused_and_nothing_created_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, outside) = (tmp.path().join("log"), tmp.path().join("outside"));
    fs::create_dir(&outside).unwrap();
    make_full_log(&dir);
    let lock = dir.join("wormlog.lock");
    fs::remove_file(&lock).unwrap();
    let target = outside.join("created-through-the-link");
    symlink(&target, &lock).unwrap();
    is_symlink_error(Log::open(&dir, Options::default()), &lock);
    assert!(
        !target.exists(),
        "the writer created a file through the link"
    );
}

#[test]
fn verify_reports_a_symlink_even_under_a_name_no_reader_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_full_log(&dir);
    let lock = dir.join("wormlog.lock");
    fs::remove_file(&lock).unwrap();
    symlink("/etc/passwd", &lock).unwrap();
    let reader = Log::open_read_only(&dir, Options::default()).unwrap();
    is_symlink_error(reader.verify(), &lock);
}

#[test]
fn a_log_directory_reached_through_a_symlinked_path_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    make_full_log(&dir);
    let link = tmp.path().join("link-to-log");
    symlink(&dir, &link).unwrap();
    let log = Log::open(&link, Options::default()).unwrap();
    log.append(b"through the directory's link").unwrap();
    log.verify().unwrap();
    log.close().unwrap();
    assert_eq!(mode(&dir), 0o750);
}

/// Fifteenth red team: a checkpoint's fdatasync of the active segment
/// reopened it following links. It opens as every read does now: a
/// symbolic link where the file belongs is refused, never followed.
#[test]
fn a_checkpoints_sync_does_not_follow_a_symlink() {
    use wormlog::storage::{FsStorage, Storage};
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"not a segment").unwrap();
    let link = dir.path().join("seg-00000000000000000001.wlog");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = FsStorage.sync_file(&link).unwrap_err();
    // ELOOP: O_NOFOLLOW refused the link.
    assert_eq!(err.raw_os_error(), Some(40), "{err}");
}
