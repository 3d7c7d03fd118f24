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

/// This machine's host name, reduced to characters that are safe in a prompt header.
pub fn this_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let name: String = if ok {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end])
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .take(64)
            .collect()
    } else {
        String::new()
    };
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}
