//! Peers: one agent session in one tmux pane, as `peers/NAME.json`. This file holds the
//! records (reading, writing, finding them); `register` how a session gets its name and
//! record, `status` whether it is online, busy or gone.
//!
//! A peer record is only changed under its lock `peers/NAME.lock` ([`update`]), by the hooks
//! (turn state), registration and delivery. Status is derived when asked ([`status_of`]): from
//! the agent's process when the SessionStart hook could record it (a look at `/proc`), else one
//! `tmux list-panes -a` per tmux server tells which panes still exist and run the agent.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::agents::{Agent, Inbox};
use crate::error::{Error, Hint};
use crate::process::Process;
use crate::spool::{Spool, Staged};
use crate::tmux;

mod register;
mod status;

pub use register::{
    NAMING_LOCK, SessionStart, register, session_started, set_description, unregister,
};
pub use status::{Status, live_panes, status, status_of};

/// The sender name of anything that is not a registered peer (a person at a terminal).
pub const USER: &str = "user";

/// Longest accepted peer name, in bytes.
pub const MAX_NAME: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Peer {
    pub name: String,
    /// Which agent runs in the pane (`claude`).
    pub agent: Agent,
    /// The tmux server's socket path.
    pub tmux_socket: PathBuf,
    /// The pane id (`%N`).
    pub pane: String,
    /// The agent's working directory (its repository).
    pub path: PathBuf,
    /// The agent's current session id (changes on `/clear`).
    #[serde(default)]
    pub session_id: Option<String>,
    /// The pane's foreground command while the agent ran, to tell the agent from a shell.
    #[serde(default)]
    pub agent_command: Option<String>,
    /// The agent's process, when its SessionStart hook could tell: the session lasts as long as
    /// it lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_process: Option<Process>,
    /// The name was chosen with `peer register` and survives re-registration by the hooks.
    #[serde(default)]
    pub pinned: bool,
    /// One line on what the peer knows (see `describe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The description was given by a person (`peer describe`, the team file): it stays when
    /// a session starts, which otherwise takes it from the repository's files again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub described: bool,
    /// False after the agent's SessionEnd: messages wait for its return.
    pub online: bool,
    pub registered_ms: u64,
    /// When the agent's current session started.
    #[serde(default)]
    pub started_ms: u64,
    pub last_activity_ms: u64,
    #[serde(default)]
    pub turn: Turn,
    /// Submissions typed while a turn ran, each to run as its own turn after it (Claude Code
    /// queues them): the message id each carries, or `None` for a person's prompt.
    #[serde(default)]
    pub queued_turns: Vec<Option<String>>,
    /// How its live session is reached, decided when the session started. Absent from the
    /// records of repowire 0.1 and from `peer register`'s: then by its pane (see
    /// [`Peer::transport`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    /// Why its agent's inbox is not used, for an agent that has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_inbox: Option<String>,
    /// The session's transcript, as its session-start hook named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<PathBuf>,
}

impl Peer {
    /// How its live session is reached.
    pub fn transport(&self) -> Transport {
        match self.transport {
            Some(t) => t,
            None if self.pane.is_empty() => Transport::Fork,
            None => Transport::Tmux,
        }
    }

    /// A session with no live channel, that answers by fork only.
    pub fn fork_only(&self) -> bool {
        self.transport() == Transport::Fork
    }
}

/// How a peer's live session is reached: how a question gets into it (`deliver`). Any peer
/// can also be asked through a read-only fork of its session (`fork`) where its agent forks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Posted to the session's own inbox (see [`Inbox`]), in or outside tmux.
    Inbox,
    /// Typed into the agent's prompt box in its tmux pane.
    Tmux,
    /// None: a session outside tmux without an inbox, asked through forks only.
    Fork,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Inbox => "inbox",
            Transport::Tmux => "tmux",
            Transport::Fork => "fork",
        })
    }
}

/// `peers/NAME.inbox`: the inbox of `name`'s session, its token a secret (the file is
/// private, like every spool file, and nothing prints it). Apart from the record, so that
/// nothing that shows a record can show the token.
pub fn inbox_path(spool: &Spool, name: &str) -> PathBuf {
    spool.path(&format!("peers/{name}.inbox"))
}

/// The inbox of `name`'s current session, if it has one.
pub fn load_inbox(spool: &Spool, name: &str) -> Result<Option<Inbox>> {
    spool.read_json(&inbox_path(spool, name))
}

/// Keeps `inbox` for `name`'s session, or forgets the previous session's (`None`).
pub(super) fn save_inbox(spool: &Spool, name: &str, inbox: Option<&Inbox>) -> Result<()> {
    let path = inbox_path(spool, name);
    match inbox {
        Some(i) => spool.write_json(&path, i),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("cannot remove {}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

/// The agent's turn, from its UserPromptSubmit and Stop hooks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Turn {
    pub busy: bool,
    /// The running turn's prompt id, when the agent gave one.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// The repowire message this turn is working on, if any.
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub since_ms: u64,
}

/// `peers/NAME.json`, the peer's record.
pub fn record_path(spool: &Spool, name: &str) -> PathBuf {
    spool.path(&format!("peers/{name}.json"))
}

/// The lock that guards `name`'s record and the messages to it.
pub fn lock_name(name: &str) -> String {
    format!("peers/{name}.lock")
}

/// Checks a peer name: 1 to 64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        let shown: String = name
            .chars()
            .take(80)
            .flat_map(char::escape_default)
            .collect();
        return Err(Error::BadInput(format!(
            "invalid peer name \"{shown}\": use 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )));
    }
    if name == USER {
        return Err(Error::BadInput(format!(
            "'{USER}' is reserved for messages from a terminal; choose another name"
        )));
    }
    Ok(())
}

pub fn load(spool: &Spool, name: &str) -> Result<Option<Peer>> {
    let path = record_path(spool, name);
    let Some(record) = spool.read_json::<serde_json::Value>(&path)? else {
        return Ok(None);
    };
    // A peer of an agent this binary does not know was registered by a newer repowire that
    // shares the spool (an agent's MCP server outlives an upgrade): not ours to read, and
    // not ours to move aside either.
    if record["agent"]
        .as_str()
        .is_some_and(|a| Agent::named(a).is_none())
    {
        return Ok(None);
    }
    let peer = match serde_json::from_value::<Peer>(record) {
        Ok(p) => Some(p),
        Err(e) => {
            spool.quarantine(&path, &format!("not a valid record: {e}"));
            return Ok(None);
        }
    };
    // The name inside is used in paths (its lock, its record): it must be the file's own, and
    // a name repowire gives.
    match peer {
        Some(p) if p.name != name || validate_name(name).is_err() => {
            let why = format!(
                "it holds a peer named {:?}, not one named after the file",
                p.name.chars().take(80).collect::<String>()
            );
            spool.quarantine(&path, &why);
            Ok(None)
        }
        peer => Ok(peer),
    }
}

/// Loads a peer that must exist, with a "did you mean" hint otherwise.
pub fn require(spool: &Spool, name: &str) -> Result<Peer> {
    validate_name(name)?;
    if let Some(p) = load(spool, name)? {
        return Ok(p);
    }
    let hint = spool
        .list("peers")?
        .into_iter()
        .map(|n| (edit_distance(&n.to_lowercase(), &name.to_lowercase()), n))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, n)| n);
    Err(Error::UnknownPeer {
        name: name.to_string(),
        hint: Hint(hint),
    }
    .into())
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

pub fn all(spool: &Spool) -> Result<Vec<Peer>> {
    let mut out = Vec::new();
    for name in spool.list("peers")? {
        // A record that vanished between listing and reading was unregistered: skip it.
        if let Some(p) = load(spool, &name)? {
            out.push(p);
        }
    }
    Ok(out)
}

pub fn save(spool: &Spool, peer: &Peer) -> Result<()> {
    place(spool, peer, stage(spool, peer)?)
}

/// Writes `peer`'s record to `tmp/` (see [`Staged`]), for [`place`].
pub fn stage(spool: &Spool, peer: &Peer) -> Result<Staged> {
    let mut bytes = serde_json::to_vec_pretty(peer)?;
    bytes.push(b'\n');
    Ok(spool.stage(&bytes)?)
}

/// Puts `peer`'s staged record in place.
pub fn place(spool: &Spool, peer: &Peer, staged: Staged) -> Result<()> {
    let dest = record_path(spool, &peer.name);
    staged
        .place(&dest)
        .with_context(|| format!("cannot write {}", dest.display()))
}

/// Read-modify-write of one peer record under its lock. `f` returns false to leave it as is.
/// Returns the record as it is after the update, or `None` if there is no such peer.
pub fn update(
    spool: &Spool,
    name: &str,
    f: impl FnOnce(&mut Peer) -> bool,
) -> Result<Option<Peer>> {
    let _lock = spool.lock(&lock_name(name))?;
    let Some(mut peer) = load(spool, name)? else {
        return Ok(None);
    };
    if f(&mut peer) {
        save(spool, &peer)?;
    }
    Ok(Some(peer))
}

/// The peer registered for a pane of a tmux server, if any. Every hook asks, so the pane's
/// index entry is tried first; without one (or a stale one) every record is read.
pub fn by_pane(spool: &Spool, socket: &Path, pane: &str) -> Result<Option<Peer>> {
    let here = |p: &Peer| p.pane == pane && p.tmux_socket == socket;
    if let Ok(Some(name)) = spool.read_json::<String>(&spool.path(&pane_index(socket, pane)))
        && validate_name(&name).is_ok()
        && let Some(p) = load(spool, &name)?.filter(here)
    {
        return Ok(Some(p));
    }
    Ok(all(spool)?.into_iter().find(here))
}

/// `peers/.pane-HASH-N`: the name of the peer last registered for pane `%N` of the tmux server
/// at `socket` (HASH: FNV-1a of the socket path). A hint only, checked against the record.
fn pane_index(socket: &Path, pane: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let hash = socket
        .as_os_str()
        .as_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("peers/.pane-{hash:016x}-{}", pane.trim_start_matches('%'))
}

/// Saves a peer that just took a pane, and indexes it by that pane.
pub fn save_with_pane(spool: &Spool, peer: &Peer) -> Result<()> {
    save(spool, peer)?;
    if peer.pane.is_empty() {
        return Ok(());
    }
    spool.write_json(
        &spool.path(&pane_index(&peer.tmux_socket, &peer.pane)),
        &peer.name,
    )
}

/// Where the current process runs: `$TMUX`'s server and `$TMUX_PANE`.
pub fn own_pane() -> Option<(PathBuf, String)> {
    let socket = tmux::socket_from_tmux_env(std::env::var("TMUX").ok().as_deref())?;
    let pane = std::env::var("TMUX_PANE")
        .ok()
        .filter(|p| p.starts_with('%'))?;
    Some((socket, pane))
}

/// The name messages from this process are sent as: the peer of the pane it runs in, else
/// (outside tmux) the peer whose agent it runs under (an agent's MCP server, a command the
/// agent runs), else [`USER`].
pub fn sender_name(spool: &Spool) -> Result<String> {
    let peer = match own_pane() {
        Some((socket, pane)) => by_pane(spool, &socket, &pane)?,
        None => match crate::process::hook_agent() {
            Some(agent) => all(spool)?
                .into_iter()
                .find(|p| p.pane.is_empty() && p.agent_process == Some(agent)),
            None => None,
        },
    };
    Ok(peer.map_or_else(|| USER.to_string(), |p| p.name))
}

/// A peer of tmux server `/sock`, online and idle, with nothing else set.
#[cfg(test)]
pub(crate) fn test_peer(n: &str, pane: &str) -> Peer {
    Peer {
        name: n.into(),
        agent: Agent::default(),
        tmux_socket: "/sock".into(),
        pane: pane.into(),
        path: "/p".into(),
        session_id: None,
        agent_command: None,
        agent_process: None,
        pinned: false,
        description: None,
        described: false,
        online: true,
        registered_ms: 0,
        started_ms: 0,
        last_activity_ms: 0,
        turn: Turn::default(),
        queued_turns: vec![],
        transport: None,
        no_inbox: None,
        transcript: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["backend", "a", "web-2", "my_repo.v2", &"x".repeat(64)] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "../etc",
            "a/b",
            "-x",
            ".hidden",
            "user",
            "a b",
            "a\nb",
            "é",
            "a\u{1b}[31m",
            &"x".repeat(65),
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("beta", "betta"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    /// An agent's MCP server outlives an upgrade of repowire: this binary may share the spool
    /// with a newer one that registers a peer of an agent it does not know. That record is
    /// neither read nor moved aside, and its name is not given again.
    #[test]
    fn a_newer_repowires_peer_of_an_unknown_agent_is_left_alone() {
        let t = tempfile::tempdir().unwrap();
        let spool = Spool::open(&t.path().join("s")).unwrap();
        let mut newer = serde_json::to_value(test_peer("web", "%1")).unwrap();
        newer["agent"] = serde_json::json!("a-newer-agent");
        let path = record_path(&spool, "web");
        std::fs::write(&path, newer.to_string()).unwrap();
        std::fs::set_permissions(
            &path,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        assert_eq!(load(&spool, "web").unwrap(), None);
        assert!(all(&spool).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), newer.to_string());
        let cwd = t.path().join("web");
        std::fs::create_dir_all(&cwd).unwrap();
        let p = session_started(
            &spool,
            &SessionStart {
                socket: Path::new(""),
                pane: "",
                cwd: &cwd,
                session_id: Some("s1"),
                agent: Agent::default(),
                agent_command: None,
                agent_process: None,
                naming: crate::config::Naming::Directory,
                inbox: Ok(None),
                transcript: None,
            },
        )
        .unwrap();
        assert_eq!(p.name, "web-2");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), newer.to_string());
    }

    #[test]
    fn a_pane_finds_its_peer_through_the_index_or_without_it() {
        let t = tempfile::tempdir().unwrap();
        let spool = Spool::open(&t.path().join("s")).unwrap();
        for i in 0..5 {
            save_with_pane(&spool, &test_peer(&format!("p{i}"), &format!("%{i}"))).unwrap();
        }
        let find = |pane: &str| {
            by_pane(&spool, Path::new("/sock"), pane)
                .unwrap()
                .map(|p| p.name)
        };
        assert_eq!(find("%3").as_deref(), Some("p3"));
        assert_eq!(find("%9"), None);
        assert_eq!(by_pane(&spool, Path::new("/other"), "%3").unwrap(), None);
        // p3 moved to another pane without the index knowing, and x took %3: the stale entry
        // is checked against the record and the records are searched instead.
        save(&spool, &test_peer("p3", "%7")).unwrap();
        save(&spool, &test_peer("x", "%3")).unwrap();
        assert_eq!(find("%3").as_deref(), Some("x"));
        assert_eq!(find("%7").as_deref(), Some("p3"));
    }
}
