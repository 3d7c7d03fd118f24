//! Peers on other hosts, reached as `NAME@HOST` with OpenSSH as the transport (as git and rsync
//! use it): no relay and no daemon on either side; authentication, encryption and jump hosts
//! are ssh's.
//!
//! The local repowire runs `ssh HOST repowire remote`, a constant command line, and writes one
//! JSON [`Request`] line on its stdin. The remote `repowire remote` ([`serve`]) does the work
//! in its own spool, as the `peer` commands would there, and replies with JSON lines
//! ([`Reply`]): the query id as soon as a question is queued, its progress, then one final
//! line (an answer, a result, or an error with its exit code). While it waits, a line `cancel`
//! on its stdin withdraws a question the peer does not have yet; the end of its stdin (the
//! asker or its connection is gone) ends it and leaves the question in its spool, as a killed
//! `peer ask` would: the answer is stored when it comes, and fetched later as `ID@HOST`.
//!
//! What it promises:
//! - no name and no text ever reaches a shell on either host: the remote command line is
//!   constant, names are checked before use, text travels only inside the JSON request;
//! - ssh runs in batch mode (it never prompts) with a connect timeout, and a failure says which
//!   it is: unreachable host, failed authentication, no (or an incompatible) repowire there,
//!   a lost connection (with the query id to fetch the answer), or the remote's own error with
//!   the same exit code as locally (unknown peer 3, offline 4, timeout 5, ...);
//! - several hosts are asked at once, and a listing never waits longer than [`LIST_BOUND`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::ask::Progress;
use crate::error::Error;
use crate::host;
use crate::message;
use crate::peer::{self, Status, USER};
use crate::spool::Spool;

mod call;
mod serve;

pub use call::{ask, ask_no_wait, broadcast, check, list, notify, wait};
pub use serve::serve;

/// The version of the request and reply format; a remote repowire refuses any other.
const PROTOCOL: u32 = 1;
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Exit code of an error in reaching or using the remote host itself.
pub const EXIT_REMOTE: u8 = 9;
/// The longest `peer list --all` and `list_peers` wait for the remote hosts.
pub const LIST_BOUND: Duration = Duration::from_secs(5);
/// The longest wait a request may ask for.
const MAX_WAIT_SECS: u64 = 30 * 86_400;

/// What the local repowire asks the remote one to do (one JSON line on stdin).
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    protocol: u32,
    #[serde(flatten)]
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Op {
    /// Ask `to`; with `wait`, reply with the answer (and the progress before it if asked),
    /// else with the id only.
    Ask {
        from: String,
        to: String,
        text: String,
        timeout_secs: u64,
        wait: bool,
        #[serde(default)]
        progress: bool,
        /// The askers waiting on `from` (see [`chain`]); an older repowire sends none.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        chain: Vec<String>,
    },
    /// Wait for the answer to an earlier question.
    Wait {
        id: String,
        timeout_secs: u64,
        #[serde(default)]
        progress: bool,
    },
    /// The answer to an earlier question, or where it stands, without waiting.
    Get {
        id: String,
    },
    Notify {
        from: String,
        to: String,
        text: String,
    },
    Broadcast {
        from: String,
        text: String,
    },
    List,
}

/// One line of the remote's reply (stdout).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    /// The question is queued under this id.
    Id(String),
    Progress(Progress),
    Answer(String),
    /// Not answered yet (`get`).
    Pending {
        to: String,
        stage: String,
    },
    Notified {
        id: String,
        to: String,
        status: Status,
    },
    Broadcast {
        now: Vec<String>,
        later: Vec<String>,
    },
    Peers(Vec<PeerInfo>),
    Error {
        code: u8,
        message: String,
        /// For a timeout: the peer it was for, and whether the peer still has the question.
        #[serde(default)]
        peer: Option<String>,
        #[serde(default)]
        pending: bool,
    },
}

/// A peer as another host sees it in `peer list --all` and `list_peers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInfo {
    pub name: String,
    pub status: Status,
    pub agent: String,
    pub pane: String,
    pub path: PathBuf,
    pub last_activity_ms: u64,
    pub queued: usize,
    /// Not sent by a repowire from before descriptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// How the peer is reached there; not sent by a repowire from before transports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
}

/// The peers of one remote host, or why they could not be listed.
pub struct HostPeers {
    pub host: String,
    pub peers: Result<Vec<PeerInfo>, String>,
}

/// `NAME@HOST` as (NAME, HOST), both checked; `None` for a local name.
pub fn parse_peer(s: &str) -> Result<Option<(&str, &str)>, Error> {
    let Some((name, host)) = s.split_once('@') else {
        return Ok(None);
    };
    peer::validate_name(name)?;
    host::validate(host)?;
    Ok(Some((name, host)))
}

/// Refuses `--fork` for a peer on another host.
pub fn no_fork(fork: bool) -> Result<(), Error> {
    if fork {
        return Err(Error::BadInput(
            "a peer on another host cannot be asked by fork yet; ask it without --fork (or run the ask on that host)".into(),
        ));
    }
    Ok(())
}

/// `ID@HOST` (a query id from another host) as (ID, HOST), both checked; `None` for a local id.
pub fn parse_id(s: &str) -> Result<Option<(&str, &str)>, Error> {
    let Some((id, host)) = s.split_once('@') else {
        return Ok(None);
    };
    message::validate_id(id)?;
    host::validate(host)?;
    Ok(Some((id, host)))
}

/// Who a message sent from here is from, as the remote peer sees it: `NAME@THISHOST`.
pub fn sender(spool: &Spool) -> Result<String> {
    Ok(format!(
        "{}@{}",
        peer::sender_name(spool)?,
        host::this_host()
    ))
}

/// The askers (`NAME@HOST`) waiting, directly or through others, on whoever asks from here
/// (themselves included): sent with a question to another host, so that a question back
/// that would close a circle of waits across hosts is refused there at once.
pub fn chain(spool: &Spool) -> Result<Vec<String>> {
    let name = peer::sender_name(spool)?;
    if name == USER {
        return Ok(Vec::new()); // a person at a terminal: nobody can ask them back
    }
    message::waiting_on(spool, &name)
}

/// Checks the sender of a request: `NAME@HOST`, both safe to show in a prompt header.
fn validate_from(from: &str) -> Result<(), Error> {
    let ok = from.split_once('@').is_some_and(|(name, host)| {
        (name == USER || peer::validate_name(name).is_ok())
            && !host.is_empty()
            && host.len() <= 64
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    if ok {
        Ok(())
    } else {
        Err(Error::BadInput(format!(
            "invalid sender {:?}: expected NAME@HOST",
            from.chars().take(80).collect::<String>()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosts_are_checked() {
        assert_eq!(parse_peer("backend").unwrap(), None);
        assert_eq!(
            parse_peer("backend@me@devbox").unwrap(),
            Some(("backend", "me@devbox"))
        );
        for bad in [
            "b@-oProxyCommand=x",
            "b@dev box",
            "b@$(id)",
            "b@`id`",
            "b@a;b",
            "b@",
            "b@a\nb",
            "b@a'b",
            "$(id)@devbox",
            "user@devbox",
        ] {
            assert!(parse_peer(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse_peer("b@ssh://me@[::1]:2222").unwrap(),
            Some(("b", "ssh://me@[::1]:2222"))
        );
        assert!(
            parse_id("01JABCDEFGHJKMNPQRSTVWXYZ0@devbox")
                .unwrap()
                .is_some()
        );
        assert!(parse_id("../x@devbox").is_err());
        assert!(validate_from("user@laptop.local").is_ok());
        assert!(validate_from("web@laptop").is_ok());
        for bad in ["web", "web@", "@laptop", "web@lap top", "web@a@b", "w b@x"] {
            assert!(validate_from(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(validate_from(&format!("user@{}", host::this_host())).is_ok());
    }

    #[test]
    fn requests_and_replies_round_trip() {
        let r = Request {
            protocol: PROTOCOL,
            op: Op::Ask {
                from: "user@x".into(),
                to: "b".into(),
                text: "a\nb'\"$(x)`\u{1b}".into(),
                timeout_secs: 5,
                wait: true,
                progress: true,
                chain: vec!["web@laptop".into()],
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'));
        assert!(line.contains(r#""op":"ask""#), "{line}");
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(back.op, Op::Ask { text, chain, .. }
            if text == "a\nb'\"$(x)`\u{1b}" && chain == ["web@laptop"]));
        // From a repowire that sends no chain.
        let old = r#"{"protocol":1,"op":"ask","from":"u@x","to":"b","text":"t","timeout_secs":5,"wait":true}"#;
        let old: Request = serde_json::from_str(old).unwrap();
        assert!(matches!(old.op, Op::Ask { chain, .. } if chain.is_empty()));
        let p = serde_json::to_string(&Reply::Progress(Progress::Queued { ahead: 2 })).unwrap();
        assert!(matches!(
            serde_json::from_str::<Reply>(&p).unwrap(),
            Reply::Progress(Progress::Queued { ahead: 2 })
        ));
    }
}
