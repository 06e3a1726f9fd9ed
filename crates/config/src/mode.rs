//! What every front end says alike about the mode settings.

/// The answer to a user-management request in single-user mode: that it is
/// off, and the environment variable and config key that turn it on.
/// `config_file` names the config file as the reader knows it; callers add
/// what comes next (a full stop, or "and restart the server.").
pub fn multi_user_disabled(config_file: &str) -> String {
    format!(
        "User management is disabled in single-user mode. Enable multi-user mode with \
         OFFGRID_MULTI_USER=true (or `multi_user_mode: true` in {config_file})"
    )
}

#[cfg(test)]
mod tests {
    use crate::KEYS;

    #[test]
    fn the_message_names_the_real_key_and_variable() {
        let key = KEYS
            .iter()
            .find(|k| k.name == "multi_user_mode")
            .expect("multi_user_mode is a key");
        let text = super::multi_user_disabled("config.yaml");
        assert!(text.contains(&format!("{}=true", key.env)), "{text}");
        assert!(text.contains(&format!("`{}: true`", key.name)), "{text}");
    }
}
