//! How an agent session becomes a peer: the name it is given (the pane's peer's, a returning
//! peer's of its directory, else its repository's, made unique), `peer register` and
//! `unregister`, and descriptions.

use std::path::Path;

use anyhow::{Context, Result};

use super::{
    MAX_NAME, Peer, Status, Transport, Turn, USER, all, by_pane, inbox_path, load, lock_name,
    record_path, require, save_inbox, save_with_pane, status, update, validate_name,
};
use crate::agents::{Agent, Inbox};
use crate::config::Naming;
use crate::describe;
use crate::error::{Error, Hint};
use crate::process::Process;
use crate::spool::Spool;
use crate::time::now_ms;
use crate::tmux::Server;

/// Held while a name is given to a session, so that two never take the same one.
pub const NAMING_LOCK: &str = "peers/.naming.lock";

/// A peer name made from a directory name: invalid characters become `-`.
fn name_from_dir(dir: &Path) -> String {
    let base = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_start_matches(['.', '_', '-']).to_string();
    name.truncate(MAX_NAME - 4);
    if name.is_empty() || name == USER {
        name = format!("peer-{name}").trim_end_matches('-').to_string();
    }
    name
}

/// The repository a directory belongs to: the nearest ancestor with `.git`, else the directory.
fn repo_root(cwd: &Path) -> &Path {
    cwd.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(cwd)
}

/// What a SessionStart hook knows about the session starting.
pub struct SessionStart<'a> {
    pub socket: &'a Path,
    pub pane: &'a str,
    pub cwd: &'a Path,
    pub session_id: Option<&'a str>,
    pub agent: Agent,
    pub agent_command: Option<String>,
    pub agent_process: Option<Process>,
    pub naming: Naming,
    /// The session's inbox, or why it is not used (see `Kind::inbox`).
    pub inbox: Result<Option<Inbox>, String>,
    pub transcript: Option<&'a Path>,
}

impl SessionStart<'_> {
    /// How the session is reached: its inbox where it has one, else typing in its pane, else
    /// forks only.
    fn transport(&self) -> Transport {
        match (&self.inbox, self.pane.is_empty()) {
            (Ok(Some(_)), _) => Transport::Inbox,
            (_, false) => Transport::Tmux,
            (_, true) => Transport::Fork,
        }
    }
}

/// Registers (or re-activates) the peer of a starting agent session. The pane's existing peer
/// keeps its name (so `/clear` keeps the peer); else a peer of this directory whose session is
/// over takes it back (names pinned with `peer register` first); else the repository's name,
/// made unique.
pub fn session_started(spool: &Spool, s: &SessionStart<'_>) -> Result<Peer> {
    // Naming must be decided by one process at a time, or two sessions starting together in
    // the same repository could take the same name.
    let _naming = spool.lock(NAMING_LOCK)?;
    let peers = all(spool)?;
    let now = now_ms();
    // A peer whose session is over comes back under its name when an agent starts in its
    // directory again, so the messages that waited for it are delivered.
    let gone = |p: &&Peer| p.path == s.cwd && status(p).0 == Status::Offline;
    let existing = peers
        .iter()
        .find(|p| !s.pane.is_empty() && p.pane == s.pane && p.tmux_socket == s.socket)
        .or_else(|| peers.iter().filter(|p| p.pinned).find(gone))
        .or_else(|| peers.iter().find(gone));
    let name = match existing {
        Some(p) => p.name.clone(),
        None => {
            let dir = match s.naming {
                Naming::Repository => repo_root(s.cwd),
                Naming::Directory => s.cwd,
            };
            // Every record's name counts, also one this binary cannot read (a newer repowire's
            // peer of an agent it does not know).
            unique_name(&spool.list("peers")?, &name_from_dir(dir))
        }
    };
    let fresh = Peer {
        name: name.clone(),
        agent: s.agent,
        tmux_socket: s.socket.to_path_buf(),
        pane: s.pane.to_string(),
        path: s.cwd.to_path_buf(),
        session_id: s.session_id.map(str::to_string),
        agent_command: s.agent_command.clone(),
        agent_process: s.agent_process,
        pinned: false,
        description: describe::of_repository(s.cwd),
        described: false,
        online: true,
        registered_ms: now,
        started_ms: now,
        last_activity_ms: now,
        turn: Turn::default(),
        queued_turns: Vec::new(),
        transport: Some(s.transport()),
        no_inbox: s.inbox.as_ref().err().cloned(),
        transcript: s.transcript.map(Path::to_path_buf),
    };
    let _lock = spool.lock(&lock_name(&name))?;
    // The inbox first: a deliverer that sees the record's transport finds its inbox.
    save_inbox(spool, &name, s.inbox.as_ref().ok().and_then(Option::as_ref))?;
    let peer = match load(spool, &name)? {
        Some(old) if old.described => Peer {
            pinned: old.pinned,
            registered_ms: old.registered_ms,
            description: old.description,
            described: true,
            ..fresh
        },
        Some(old) => Peer {
            pinned: old.pinned,
            registered_ms: old.registered_ms,
            ..fresh
        },
        None => fresh,
    };
    save_with_pane(spool, &peer)?;
    Ok(peer)
}

fn unique_name(names: &[String], base: &str) -> String {
    let taken = |n: &str| names.iter().any(|t| t == n);
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .expect("an unused suffix exists")
}

/// `peer register`: gives the pane at `target` the name `name` (pinned), taking over the
/// record of whatever peer that pane had. A `description` replaces the peer's (empty: back to
/// the repository's own); without one it keeps a given one.
pub fn register(
    spool: &Spool,
    name: &str,
    target: &str,
    path: &Path,
    description: Option<&str>,
) -> Result<Peer> {
    validate_name(name)?;
    let description = description
        .map(describe::check)
        .transpose()
        .map_err(Error::BadInput)?;
    let (pane, socket) = Server::from_env().resolve(target).map_err(|e| match e {
        Error::Tmux { stderr, .. } => Error::BadInput(format!(
            "cannot find tmux target '{target}': {stderr}; `tmux list-panes -a` shows the panes"
        )),
        e => e,
    })?;
    let path = std::fs::canonicalize(path)
        .with_context(|| format!("cannot use path {}", path.display()))?;
    let _naming = spool.lock(NAMING_LOCK)?;
    let previous = by_pane(spool, &socket, &pane.id)?.filter(|p| p.name != name);
    let now = now_ms();
    let _lock = spool.lock(&lock_name(name))?;
    let base = load(spool, name)?.or(previous.clone());
    let peer = Peer {
        name: name.to_string(),
        agent: base.as_ref().map_or(Agent::default(), |b| b.agent),
        tmux_socket: socket.clone(),
        pane: pane.id.clone(),
        path: path.clone(),
        session_id: base.as_ref().and_then(|b| b.session_id.clone()),
        agent_command: base
            .as_ref()
            .and_then(|b| b.agent_command.clone())
            .or(Some(pane.command.clone())),
        // Only the agent of this very pane.
        agent_process: base
            .as_ref()
            .filter(|b| b.pane == pane.id && b.tmux_socket == socket)
            .and_then(|b| b.agent_process),
        pinned: true,
        description: match (&description, &base) {
            (Some(d), _) if !d.is_empty() => Some(d.clone()),
            (None, Some(b)) if b.described => b.description.clone(),
            _ => describe::of_repository(&path),
        },
        described: match (&description, &base) {
            (Some(d), _) => !d.is_empty(),
            (None, Some(b)) => b.described,
            (None, None) => false,
        },
        online: !pane.dead,
        registered_ms: base.as_ref().map_or(now, |b| b.registered_ms),
        started_ms: base.as_ref().map_or(0, |b| b.started_ms),
        last_activity_ms: now,
        turn: base.as_ref().map(|b| b.turn.clone()).unwrap_or_default(),
        queued_turns: base
            .as_ref()
            .map(|b| b.queued_turns.clone())
            .unwrap_or_default(),
        // The session of this very pane keeps its inbox; another is typed into.
        transport: base
            .as_ref()
            .filter(|b| b.pane == pane.id && b.tmux_socket == socket)
            .and_then(|b| b.transport)
            .filter(|t| *t == Transport::Inbox)
            .or(Some(Transport::Tmux)),
        no_inbox: base.as_ref().and_then(|b| b.no_inbox.clone()),
        transcript: base.and_then(|b| b.transcript),
    };
    // The pane's session keeps its inbox under the new name.
    if let Some(prev) = previous
        .as_ref()
        .filter(|_| peer.transport == Some(Transport::Inbox))
    {
        save_inbox(spool, name, super::load_inbox(spool, &prev.name)?.as_ref())?;
    }
    save_with_pane(spool, &peer)?;
    if let Some(prev) = previous {
        let _prev_lock = spool.lock(&lock_name(&prev.name))?;
        remove_record(spool, &prev.name)?;
    }
    Ok(peer)
}

/// `peer describe`: gives the peer `text` as its description; empty text gives it its
/// repository's own again.
pub fn set_description(spool: &Spool, name: &str, text: &str) -> Result<Peer> {
    let text = describe::check(text).map_err(Error::BadInput)?;
    require(spool, name)?;
    let p = update(spool, name, |p| {
        p.described = !text.is_empty();
        p.description = if p.described {
            Some(text.clone())
        } else {
            describe::of_repository(&p.path)
        };
        true
    })?;
    p.ok_or_else(|| {
        Error::UnknownPeer {
            name: name.into(),
            hint: Hint(None),
        }
        .into()
    })
}

/// `peer unregister`.
pub fn unregister(spool: &Spool, name: &str) -> Result<()> {
    require(spool, name)?;
    let _lock = spool.lock(&lock_name(name))?;
    remove_record(spool, name)
}

fn remove_record(spool: &Spool, name: &str) -> Result<()> {
    for path in [record_path(spool, name), inbox_path(spool, name)] {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("cannot remove {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_become_valid_names() {
        for (dir, want) in [
            ("/src/backend", "backend"),
            ("/src/My Repo", "My-Repo"),
            ("/src/.dotfiles", "dotfiles"),
            ("/", "peer"),
            ("/home/user", "peer-user"),
        ] {
            let n = name_from_dir(Path::new(dir));
            assert_eq!(n, want);
            validate_name(&n).unwrap();
        }
    }

    #[test]
    fn unique_names_get_suffixes() {
        let names = ["api".to_string(), "api-2".to_string()];
        assert_eq!(unique_name(&names, "api"), "api-3");
        assert_eq!(unique_name(&names, "web"), "web");
    }
}
