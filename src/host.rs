//! Hosts as a person names them for peers elsewhere (`NAME@HOST`, `remotes:` in config.yaml):
//! an ssh destination, checked before it is used, so that it can never be taken for one of
//! ssh's options or reach a shell.

use crate::error::Error;

/// Checks a host as given by a user: what ssh takes as a destination (an alias from the ssh
/// config, a name or address, `user@host`, `ssh://user@host:port`), and never an option.
pub fn validate(host: &str) -> Result<(), Error> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with('-')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@:%[]/".contains(&b));
    if ok {
        return Ok(());
    }
    let shown: String = host
        .chars()
        .take(80)
        .flat_map(char::escape_default)
        .collect();
    Err(Error::BadInput(format!(
        "invalid host `{shown}`: give an ssh destination (a host from your ssh config, a host name or address, user@host, ssh://user@host:port) made of letters, digits and . _ - @ : % [ ] /"
    )))
}
