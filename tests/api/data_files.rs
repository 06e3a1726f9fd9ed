//! The data directory is private: `$OFFGRID_HOME` 0700 and the database
//! files 0600 after the server starts, also for an install made with
//! looser modes.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::spawn_app;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_server_makes_an_existing_home_private() {
    let app = spawn_app(|s| {
        s.multi_user_mode = true;
        // An existing install, made world-readable.
        std::fs::set_permissions(&s.home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::write(s.home.join("offgrid.db"), b"").expect("database file");
        std::fs::write(s.home.join("secret.key"), [7u8; 64]).expect("secret");
        for name in ["offgrid.db", "secret.key"] {
            std::fs::set_permissions(s.home.join(name), std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
    });
    app.setup_admin();
    let home = app.home.path();
    assert_eq!(mode(home), 0o700);
    for name in [
        "offgrid.db",
        "offgrid.db-wal",
        "offgrid.db-shm",
        "secret.key",
    ] {
        assert_eq!(mode(&home.join(name)), 0o600, "{name}");
    }
}
