//! One question to several peers at once (`peer ask A B "Q"`, `--all`, the `ask_peers` tool):
//! each is an ordinary ask, with its own deadlock check, waiter lock and timeout; the answers
//! are handed over as they arrive, and one peer's failure is that peer's alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;

use crate::error::Error;
use crate::peer::{self, Status};
use crate::reach::{self, Target};
use crate::spool::Spool;
use crate::wait::CANCEL_TICK;

/// One peer's outcome.
pub struct Reply {
    pub peer: String,
    pub answer: Result<String>,
}

/// The peers `--all` asks: every one not offline, but the asker.
pub fn everyone(spool: &Spool, from: &str) -> Result<Vec<String>> {
    let peers = peer::all(spool)?;
    let panes = peer::live_panes(&peers);
    Ok(peers
        .iter()
        .filter(|p| p.name != from && peer::status_of(p, &panes).0 != Status::Offline)
        .map(|p| p.name.clone())
        .collect())
}

/// Asks each of `names` (a name once, however often given; `NAME@HOST` for another host)
/// `text` (of forks of their sessions with `fork`), and waits up to `timeout` for all of them.
/// Each reply goes to `got` as it comes; the replies are returned in that order. When `cancelled` turns true, every wait
/// ends as a cancelled `ask_peer` does.
pub fn ask(
    spool: &Spool,
    names: &[String],
    text: &str,
    (timeout, fork): (Duration, bool),
    cancelled: Option<&dyn Fn() -> bool>,
    got: &mut dyn FnMut(&Reply),
) -> Vec<Reply> {
    let mut unique: Vec<&str> = Vec::new();
    for n in names {
        if !unique.contains(&n.as_str()) {
            unique.push(n);
        }
    }
    let stop = AtomicBool::new(false);
    let stopped = || stop.load(Ordering::Relaxed);
    let (tx, rx) = mpsc::channel::<Reply>();
    let mut replies = Vec::new();
    std::thread::scope(|s| {
        for &name in &unique {
            let tx = tx.clone();
            let stopped = &stopped;
            // Every question is queued before any wait starts: so every one of them is in the
            // spool, and seen by the deadlock check, while the others wait.
            let queued = Target::parse(name)
                .map_err(anyhow::Error::from)
                .and_then(|target| reach::ask(spool, target, text, timeout, fork));
            s.spawn(move || {
                let answer = queued.and_then(|q| q.answer(spool, Some(stopped), None));
                let _ = tx.send(Reply {
                    peer: name.to_string(),
                    answer,
                });
            });
        }
        drop(tx);
        loop {
            match rx.recv_timeout(CANCEL_TICK) {
                Ok(r) => {
                    got(&r);
                    replies.push(r);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if cancelled.is_some_and(|c| c()) {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    });
    replies
}

/// The error of a fan-out that not every peer answered, with every failure in it. Its exit
/// code is [`PARTLY_ANSWERED`] when some peers answered, else the code of the first given
/// peer's error (so a fan-out that reached nobody fails as an ask to that peer would).
pub fn outcome(names: &[String], replies: &[Reply]) -> Result<()> {
    // In the order given, not the order they failed in.
    let mut seen = Vec::new();
    let failed: Vec<(&str, &anyhow::Error)> = names
        .iter()
        .filter(|n| {
            let first = !seen.contains(n);
            seen.push(*n);
            first
        })
        .filter_map(|n| replies.iter().find(|r| r.peer == *n))
        .filter_map(|r| r.answer.as_ref().err().map(|e| (r.peer.as_str(), e)))
        .collect();
    let Some(first) = failed.first() else {
        return Ok(());
    };
    let answered = replies.len() - failed.len();
    let code = if answered > 0 {
        PARTLY_ANSWERED
    } else {
        first.1.downcast_ref::<Error>().map_or(1, Error::exit_code)
    };
    Err(Error::FanOut {
        code,
        answered,
        asked: replies.len(),
        why: failed
            .iter()
            .map(|(p, e)| format!("{p}: {e:#}"))
            .collect::<Vec<_>>()
            .join("\n  "),
    }
    .into())
}

/// The exit code of a fan-out that some peers answered and some did not.
pub const PARTLY_ANSWERED: u8 = 10;

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(peer: &str, answer: Result<&str, Error>) -> Reply {
        Reply {
            peer: peer.into(),
            answer: answer.map(str::to_string).map_err(Into::into),
        }
    }

    fn offline(name: &str) -> Error {
        Error::PeerOffline {
            name: name.into(),
            why: "gone".into(),
        }
    }

    #[test]
    fn the_exit_status_of_a_fan_out() {
        let names: Vec<String> = ["a", "b", "a"].map(String::from).to_vec();
        assert!(outcome(&names, &[reply("a", Ok("x")), reply("b", Ok("y"))]).is_ok());
        let code = |r: Result<()>| {
            r.unwrap_err()
                .downcast_ref::<Error>()
                .map(Error::exit_code)
                .unwrap()
        };
        let partly = outcome(
            &names,
            &[reply("b", Err(offline("b"))), reply("a", Ok("x"))],
        );
        let e = format!("{:#}", partly.as_ref().unwrap_err());
        assert!(
            e.starts_with("1 of 2 peers answered:\n  b: peer 'b' is offline"),
            "{e}"
        );
        assert_eq!(code(partly), PARTLY_ANSWERED);
        // None answered: the first named peer's code, each failure once, in the given order.
        let none = outcome(
            &names,
            &[
                reply("b", Err(Error::BadInput("bad".into()))),
                reply("a", Err(offline("a"))),
            ],
        );
        let e = format!("{:#}", none.as_ref().unwrap_err());
        assert_eq!(e.matches("a: ").count(), 1, "{e}");
        assert!(e.find("a: ").unwrap() < e.find("b: ").unwrap(), "{e}");
        assert_eq!(code(none), 4);
    }
}
