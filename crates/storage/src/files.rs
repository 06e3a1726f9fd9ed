//! File modes of the data directory: `$OFFGRID_HOME` is 0700 and the
//! database, its `-wal` and `-shm` files and backups are 0600, whatever the
//! process umask, and an existing install with looser modes is tightened
//! when it is opened. (SQLite gives `-wal` and `-shm` the mode of the
//! database file, so a 0600 database keeps them private too.)
//!
//! On other platforms than Unix these are no-ops.

use std::path::Path;

use crate::StorageError;

fn io_err(what: &str, path: &Path, e: std::io::Error) -> StorageError {
    StorageError::Io(format!("cannot {what} {}: {e}", path.display()))
}

/// Creates `dir` (and missing parents) with mode 0700, or removes group
/// and other permissions from an existing one.
pub fn make_private_dir(dir: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err("create directory", dir, e))?;
        restrict(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir).map_err(|e| io_err("create directory", dir, e))
    }
}

/// Removes group and other permissions from the file or directory at
/// `path`, if there is one (symlinks are left alone).
pub fn restrict_to_owner(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    return restrict(path);
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", path, e)),
    };
    // Never follow a symlink to change the mode of what it points at.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        let tightened = mode & !0o077;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(tightened))
            .map_err(|e| io_err("restrict the permissions of", path, e))?;
        tracing::info!(path = %path.display(), from = format!("{mode:o}"), to = format!("{tightened:o}"), "made private");
    }
    Ok(())
}

/// Makes the file at `path` private (0600): creates it empty with that
/// mode when absent (so SQLite opens a file that never was readable by
/// others), tightens it when present.
pub(crate) fn make_private_file(path: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict(path),
            Err(e) => Err(io_err("create", path, e)),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Tightens the database's `-wal` and `-shm` files, if present.
pub(crate) fn make_sidecars_private(db: &Path) -> Result<(), StorageError> {
    #[cfg(unix)]
    {
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            restrict(Path::new(&name))?;
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}
