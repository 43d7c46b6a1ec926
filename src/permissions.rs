//! Who may change a log behind its writer (format-spec.md §1, "Owners,
//! modes and links"). The engine creates its files with fixed modes; this
//! is the writer's check, at open, of what it finds: a log written to by
//! someone else is not one it can vouch for when it appends.

use crate::error::{Error, Result};
use crate::format::names::is_engine_file_name;
use crate::storage::{FileMeta, Storage};
use std::path::{Path, PathBuf};

const OTHER_WRITE: u32 = 0o002;
const GROUP_WRITE: u32 = 0o020;

/// Checks the log directory and every file of the engine's in it before a
/// writer takes the log:
///
/// - a symbolic link where an engine file belongs is refused;
/// - anything owned by another user than the writer's effective uid is
///   refused: its owner could change it, whatever its mode;
/// - anything world-writable is refused, even the writer's own: any local
///   user may have written it, or may hold it open for writing still, which
///   no chmod takes back; the operator checks it and removes the bit;
/// - a group-writable file or directory of the writer's own has the bit
///   taken away, silently. Logs made before the engine set its own modes
///   got them from the umask, and the usual umask 002 gives group write;
///   refusing those would refuse nearly every such log for a mode that a
///   user-private group makes harmless.
pub(crate) fn check_for_writer(storage: &dyn Storage, dir: &Path) -> Result<()> {
    let uid = storage.effective_uid();
    let meta = storage
        .dir_meta(dir)
        .map_err(|e| Error::io("stat", dir, e))?
        .ok_or_else(|| Error::NotFound { path: dir.into() })?;
    check_one(storage, dir, meta, uid)?;
    for (path, meta) in engine_files(storage, dir)? {
        check_one(storage, &path, meta, uid)?;
    }
    Ok(())
}

/// Refuses a symbolic link anywhere an engine file belongs, for verify:
/// readers open only the files they need, with O_NOFOLLOW, and a link under
/// a name they never open (the lock file, a raw segment beside its sealed
/// copy) is still someone's doing.
pub(crate) fn refuse_symlinks(storage: &dyn Storage, dir: &Path) -> Result<()> {
    match engine_files(storage, dir)?
        .into_iter()
        .find(|(_, m)| m.symlink)
    {
        Some((path, _)) => Err(Error::Symlink { path }),
        None => Ok(()),
    }
}

/// The engine's files in `dir` (format-spec.md §1), each as lstat sees it.
fn engine_files(storage: &dyn Storage, dir: &Path) -> Result<Vec<(PathBuf, FileMeta)>> {
    let mut names = storage
        .list_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?;
    names.retain(|n| is_engine_file_name(n));
    names.sort_unstable();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(name);
        // A file removed since the listing (by a writer at work) cannot be
        // written through: nothing to judge.
        if let Some(meta) = storage
            .file_meta(&path)
            .map_err(|e| Error::io("stat", &path, e))?
        {
            files.push((path, meta));
        }
    }
    Ok(files)
}

fn check_one(storage: &dyn Storage, path: &Path, meta: FileMeta, uid: u32) -> Result<()> {
    if meta.symlink {
        return Err(Error::Symlink { path: path.into() });
    }
    if meta.uid != uid {
        return Err(Error::UnsafePermissions {
            path: path.into(),
            detail: format!(
                "owned by uid {}, not by uid {uid} that the writer runs as, and its owner could change it behind the writer; \
                 open the log as its owner, or check it with `wormctl verify` and `chown {uid}` it",
                meta.uid
            ),
        });
    }
    if meta.mode & OTHER_WRITE != 0 {
        return Err(Error::UnsafePermissions {
            path: path.into(),
            detail: format!(
                "world-writable (mode {:04o}): any local user could have written it or still hold it open; \
                 check the log with `wormctl verify`, then `chmod o-w` it",
                meta.mode
            ),
        });
    }
    if meta.mode & GROUP_WRITE != 0 {
        storage
            .set_mode(path, meta.mode & !GROUP_WRITE)
            .map_err(|e| Error::io("chmod g-w", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemStorage, DIR_MODE, FILE_MODE};

    fn log_dir() -> (MemStorage, std::path::PathBuf, std::path::PathBuf) {
        let storage = MemStorage::new();
        let dir = Path::new("/log").to_path_buf();
        storage.create_dir_all(&dir).unwrap();
        let seg = dir.join(crate::format::names::segment_file_name(1));
        drop(storage.create_new(&seg).unwrap());
        (storage, dir, seg)
    }

    fn refused_naming(storage: &MemStorage, dir: &Path, path: &Path) -> String {
        match check_for_writer(storage, dir) {
            Err(Error::UnsafePermissions { path: p, detail }) if p == path => detail,
            other => panic!(
                "expected UnsafePermissions naming {}: {other:?}",
                path.display()
            ),
        }
    }

    #[test]
    fn a_log_with_the_engines_modes_and_owner_is_accepted_unchanged() {
        let (storage, dir, seg) = log_dir();
        check_for_writer(&storage, &dir).unwrap();
        assert_eq!(storage.file_meta(&seg).unwrap().unwrap().mode, FILE_MODE);
        assert_eq!(storage.dir_meta(&dir).unwrap().unwrap().mode, DIR_MODE);
        assert_eq!(storage.count(crate::storage::Op::Chmod), 0);
    }

    #[test]
    fn a_file_or_directory_of_another_user_is_refused_naming_it() {
        let (storage, dir, seg) = log_dir();
        storage.set_owner_and_mode(&seg, 0, FILE_MODE);
        let detail = refused_naming(&storage, &dir, &seg);
        assert!(
            detail.contains("owned by uid 0") && detail.contains("chown 1000"),
            "{detail}"
        );

        let (storage, dir, _) = log_dir();
        storage.set_owner_and_mode(&dir, 0, 0o755);
        refused_naming(&storage, &dir, &dir);
    }

    #[test]
    fn a_world_writable_file_is_refused_even_the_writers_own() {
        let (storage, dir, seg) = log_dir();
        storage.set_owner_and_mode(&seg, 1000, 0o666);
        let detail = refused_naming(&storage, &dir, &seg);
        assert!(
            detail.contains("chmod o-w") && detail.contains("0666"),
            "{detail}"
        );
        let (storage, dir, _) = log_dir();
        storage.set_owner_and_mode(&dir, 1000, 0o777);
        refused_naming(&storage, &dir, &dir);
    }

    #[test]
    fn group_write_on_the_writers_own_files_is_taken_away() {
        let (storage, dir, seg) = log_dir();
        storage.set_owner_and_mode(&seg, 1000, 0o664);
        storage.set_owner_and_mode(&dir, 1000, 0o775);
        check_for_writer(&storage, &dir).unwrap();
        assert_eq!(storage.file_meta(&seg).unwrap().unwrap().mode, 0o644);
        assert_eq!(storage.dir_meta(&dir).unwrap().unwrap().mode, 0o755);
    }

    #[test]
    fn files_that_are_not_the_engines_are_not_judged() {
        let (storage, dir, _) = log_dir();
        let notes = dir.join("notes.txt");
        storage.write_file(&notes, b"x".to_vec());
        storage.set_owner_and_mode(&notes, 0, 0o666);
        check_for_writer(&storage, &dir).unwrap();
    }

    #[test]
    fn a_symlink_where_an_engine_file_belongs_is_refused_naming_it() {
        let (storage, dir, seg) = log_dir();
        storage.make_symlink(&seg);
        match check_for_writer(&storage, &dir) {
            Err(Error::Symlink { path }) => assert_eq!(path, seg),
            other => panic!("{other:?}"),
        }
    }
}
