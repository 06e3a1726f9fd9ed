//! File modes: the data directory is 0700, the database, its WAL and SHM
//! files and backups 0600, whatever the umask (the test process has the
//! usual 022, under which SQLite alone would make them 0644), and an
//! existing install with looser modes is tightened.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use offgrid_domain::repo::UserRepository;
use offgrid_domain::user::NewUser;
use offgrid_domain::{Role, Timestamp};
use offgrid_storage::{Database, make_private_dir};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn sidecar(db: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Opens, migrates and writes, so the WAL and SHM files exist.
fn open_and_write(path: &Path, name: &str) -> Database {
    let db = Database::open(path).expect("open");
    db.migrate().expect("migrate");
    UserRepository::create(
        &db,
        NewUser {
            username: name.to_owned(),
            email: None,
            display_name: None,
            role: Role::User,
            password_hash: "hash".to_owned(),
        },
        Timestamp(1_800_000_000),
    )
    .expect("write");
    db
}

#[test]
fn a_new_home_and_database_are_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    make_private_dir(&home).expect("home");
    assert_eq!(mode(&home), 0o700);
    let path = home.join("offgrid.db");
    let _db = open_and_write(&path, "alice");
    for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // A directory the database creates itself is private too.
    let nested = tmp.path().join("new/dir/offgrid.db");
    let _db = open_and_write(&nested, "bob");
    assert_eq!(mode(nested.parent().expect("parent")), 0o700);
    assert_eq!(mode(&nested), 0o600);
}

#[test]
fn an_existing_install_with_loose_modes_is_tightened() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let path = home.join("offgrid.db");
    drop(open_and_write(&path, "alice"));
    chmod(&home, 0o755);
    for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        if file.exists() {
            chmod(&file, 0o644);
        }
    }
    make_private_dir(&home).expect("tighten home");
    let _db = open_and_write(&path, "bob");
    assert_eq!(mode(&home), 0o700);
    for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn backups_are_private_and_never_overwrite() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let db = open_and_write(&tmp.path().join("offgrid.db"), "alice");
    let dest = tmp.path().join("backup.db");
    db.backup(&dest).expect("backup");
    assert_eq!(mode(&dest), 0o600);
    assert!(std::fs::metadata(&dest).expect("backup").len() > 0);
    assert!(db.backup(&dest).is_err(), "refuses to overwrite");
    // A dangling symlink at the target is not followed.
    let link = tmp.path().join("link.db");
    std::os::unix::fs::symlink(tmp.path().join("elsewhere.db"), &link).expect("symlink");
    assert!(db.backup(&link).is_err());
    assert!(!tmp.path().join("elsewhere.db").exists());
}
