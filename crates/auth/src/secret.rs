//! The server secret: 64 random bytes in `$OFFGRID_HOME/secret.key` (mode
//! 0600), from which the password pepper and the token key are derived.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::AuthError;

const SECRET_LEN: usize = 64;

/// The master secret. `Debug` never shows it.
#[derive(Clone)]
pub struct ServerSecret([u8; SECRET_LEN]);

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSecret(<redacted>)")
    }
}

impl ServerSecret {
    /// A fresh random secret (tests and first start).
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        ServerSecret(bytes)
    }

    /// Reads the secret from `path`, creating it (mode 0600) when absent.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthError> {
        let io = |what: &str, e: std::io::Error| {
            AuthError::Internal(format!("{what} {}: {e}", path.display()))
        };
        match std::fs::read(path) {
            Ok(bytes) => {
                let arr: [u8; SECRET_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    AuthError::Internal(format!(
                        "secret file {} is corrupt: expected {SECRET_LEN} bytes, found {}",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok(ServerSecret(arr))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| io("cannot create directory for", e))?;
                }
                let secret = ServerSecret::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut file) => {
                        file.write_all(&secret.0)
                            .map_err(|e| io("cannot write", e))?;
                        file.sync_all().map_err(|e| io("cannot sync", e))?;
                        Ok(secret)
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        ServerSecret::load_or_create(path)
                    }
                    Err(e) => Err(io("cannot create", e)),
                }
            }
            Err(e) => Err(io("cannot read", e)),
        }
    }

    /// A 32-byte key for one purpose, derived with HMAC-SHA-256.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_with_private_mode_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        let a = ServerSecret::load_or_create(&path).expect("create");
        let b = ServerSecret::load_or_create(&path).expect("load");
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{a:?}"), "ServerSecret(<redacted>)");
    }

    #[test]
    fn corrupt_secret_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        std::fs::write(&path, b"short").expect("write");
        assert!(ServerSecret::load_or_create(&path).is_err());
    }
}
