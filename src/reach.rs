//! One way to reach a peer, wherever it is. What a person or an agent names (a peer `NAME` or
//! `NAME@HOST`, a query `ID` or `ID@HOST`) is resolved here once; the command line, the MCP
//! server and the fan-out ask, notify, wait and check through this module alone and never
//! decide for themselves whether a peer is local. A peer here is asked through the spool
//! (`ask`, which hands the question to its transport: typed into its pane, or a fork of its
//! session); a peer on another host through `repowire remote` over SSH (`remote`).

use std::time::Duration;

use anyhow::Result;

use crate::ask::{self, Broadcast, Checked, Notified, Progress};
use crate::error::Error;
use crate::message;
use crate::peer;
use crate::remote;
use crate::spool::{Lock, Spool};

/// Hears the stage of a wait at every check (see [`ask::wait_answer`]).
pub type Show<'a> = Option<&'a mut dyn FnMut(Progress)>;

/// Tells a wait, at every check, whether it was cancelled.
pub type Cancelled<'a> = Option<&'a dyn Fn() -> bool>;

/// A peer, as named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// A peer of this spool.
    Here(&'a str),
    /// A peer on another host (`NAME@HOST`).
    There { peer: &'a str, host: &'a str },
}

impl<'a> Target<'a> {
    /// `NAME` or `NAME@HOST`; a name with a host is checked here, a local one when it is
    /// looked up.
    pub fn parse(name: &'a str) -> Result<Target<'a>, Error> {
        Ok(match remote::parse_peer(name)? {
            Some((peer, host)) => Target::There { peer, host },
            None => Target::Here(name),
        })
    }
}

/// A question on its way.
pub enum Question<'a> {
    /// Queued in this spool; the waiter lock is held while it is waited for, so that the
    /// deadlock check sees the wait.
    Here {
        id: String,
        waiter: Lock,
        timeout: Duration,
    },
    /// For another host: asked there when its wait starts.
    There {
        peer: &'a str,
        host: &'a str,
        text: &'a str,
        timeout: Duration,
    },
}

/// Queues question `text` to `target` (to a read-only fork of its session with `fork`) from
/// whoever asks here, to be answered within `timeout`. Refuses at once what cannot be asked:
/// an unknown or offline peer, a question that would deadlock, a fork of a peer on another
/// host.
pub fn ask<'a>(
    spool: &Spool,
    target: Target<'a>,
    text: &'a str,
    timeout: Duration,
    fork: bool,
) -> Result<Question<'a>> {
    match target {
        Target::Here(name) => {
            let from = peer::sender_name(spool)?;
            let (msg, waiter) = ask::ask(spool, &from, name, text, timeout, &[], fork)?;
            Ok(Question::Here {
                id: msg.id,
                waiter,
                timeout,
            })
        }
        Target::There { peer, host } => {
            remote::no_fork(fork)?;
            Ok(Question::There {
                peer,
                host,
                text,
                timeout,
            })
        }
    }
}

impl Question<'_> {
    /// Waits for the answer. `cancelled` withdraws a question the peer does not have yet;
    /// after a timeout the question stays, and its answer can be fetched later.
    pub fn answer(self, spool: &Spool, cancelled: Cancelled, show: Show) -> Result<String> {
        match self {
            Question::Here {
                id,
                waiter,
                timeout,
            } => {
                let answer = ask::wait_answer(spool, &id, timeout, cancelled, show);
                drop(waiter);
                Ok(answer?.text)
            }
            Question::There {
                peer,
                host,
                text,
                timeout,
            } => {
                let (from, chain) = (remote::sender(spool)?, remote::chain(spool)?);
                remote::ask(host, peer, (&from, &chain), text, timeout, cancelled, show)
            }
        }
    }
}

/// Queues question `text` to `target` and returns at once with its id (`ID@HOST` for a peer
/// on another host), for [`waiting`] or [`check`] later.
pub fn ask_no_wait(
    spool: &Spool,
    target: Target,
    text: &str,
    timeout: Duration,
    fork: bool,
) -> Result<String> {
    match target {
        Target::Here(name) => {
            let from = peer::sender_name(spool)?;
            Ok(ask::ask(spool, &from, name, text, timeout, &[], fork)?.0.id)
        }
        Target::There { peer, host } => {
            remote::no_fork(fork)?;
            let (from, chain) = (remote::sender(spool)?, remote::chain(spool)?);
            remote::ask_no_wait(host, peer, (&from, &chain), text, timeout)
        }
    }
}

/// Sends `target` a message that needs no answer.
pub fn notify(spool: &Spool, target: Target, text: &str) -> Result<Notified> {
    match target {
        Target::Here(name) => ask::notify(spool, &peer::sender_name(spool)?, name, text),
        Target::There { peer, host } => remote::notify(host, peer, &remote::sender(spool)?, text),
    }
}

/// Sends every online peer here but the sender a message, and those of each of `hosts`: what
/// was sent, and why it was not sent to a host.
pub fn broadcast(spool: &Spool, text: &str, hosts: &[String]) -> Result<(Broadcast, Vec<String>)> {
    let mut sent = ask::broadcast(spool, &peer::sender_name(spool)?, text)?;
    let mut failed = Vec::new();
    if hosts.is_empty() {
        return Ok((sent, failed));
    }
    for (host, res) in remote::broadcast(hosts, &remote::sender(spool)?, text) {
        match res {
            Ok(b) => {
                sent.now.extend(b.now);
                sent.later.extend(b.later);
            }
            Err(e) => failed.push(format!("not sent to {host}: {e:#}")),
        }
    }
    Ok((sent, failed))
}

/// The answer to question `id` if it has come, else where it stands, without waiting.
pub fn check(spool: &Spool, id: &str) -> Result<Checked> {
    match remote::parse_id(id)? {
        Some((local, host)) => remote::check(host, local),
        None => ask::check(spool, id),
    }
}

/// An earlier question, about to be waited for.
pub enum Waiting<'a> {
    Here {
        id: &'a str,
        /// The peer asked.
        to: String,
        /// Held while an open question is waited for, as its asker did: the deadlock check
        /// must see the wait.
        _waiter: Option<Lock>,
    },
    There {
        id: &'a str,
        host: &'a str,
    },
}

/// Question `id` (`ID@HOST` for one asked on another host), to wait for its answer.
pub fn waiting<'a>(spool: &Spool, id: &'a str) -> Result<Waiting<'a>> {
    if let Some((id, host)) = remote::parse_id(id)? {
        return Ok(Waiting::There { id, host });
    }
    message::validate_id(id)?;
    let m = message::load(spool, id)?
        .ok_or_else(|| Error::BadInput(format!("there is no query {id} in the spool")))?;
    let _waiter = if m.state.is_open() {
        spool.try_lock(&message::waiter_lock(id))?
    } else {
        None
    };
    Ok(Waiting::Here {
        id,
        to: m.to,
        _waiter,
    })
}

impl Waiting<'_> {
    /// Who is waited for: the peer asked, or the host it is on.
    pub fn who(&self) -> &str {
        match self {
            Waiting::Here { to, .. } => to,
            Waiting::There { host, .. } => host,
        }
    }

    /// Waits up to `timeout` for the answer.
    pub fn answer(self, spool: &Spool, timeout: Duration, show: Show) -> Result<String> {
        match self {
            Waiting::Here { id, .. } => Ok(ask::wait_answer(spool, id, timeout, None, show)?.text),
            Waiting::There { id, host } => remote::wait(host, id, timeout, show),
        }
    }
}
