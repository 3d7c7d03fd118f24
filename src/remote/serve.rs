//! The serving side: `repowire remote`, run by ssh on the other host. It reads one
//! [`Request`] line, does the work in its own spool as the `peer` commands would there, and
//! answers with [`Reply`] lines (see the module above for the protocol).

use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::ask::{self, Checked};
use crate::error::Error;
use crate::message;
use crate::peer;
use crate::spool::Spool;

/// The most waiting askers a question from another host may carry.
const MAX_CHAIN: usize = 64;

use super::{MAX_WAIT_SECS, Op, PROTOCOL, PeerInfo, Reply, Request, VERSION, validate_from};

/// The largest request a remote repowire reads: the JSON of the largest message, escaped.
const MAX_REQUEST: u64 = 8 * message::MAX_TEXT as u64;

/// `repowire remote`: serves one request read from stdin against the spool at `home`, replying
/// on stdout. Every error is a reply too (and the exit code).
pub fn serve(home: &Path) -> Result<()> {
    let res = serve_request(home);
    if let Err(e) = &res {
        let (peer, pending) = match e.downcast_ref::<Error>() {
            Some(Error::Timeout { peer, pending, .. }) => (Some(peer.clone()), *pending),
            _ => (None, false),
        };
        reply(&Reply::Error {
            code: e.downcast_ref::<Error>().map_or(1, Error::exit_code),
            message: format!("{e:#}"),
            peer,
            pending,
        });
    }
    res
}

fn serve_request(home: &Path) -> Result<()> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .take(MAX_REQUEST)
        .read_line(&mut line)
        .context("cannot read the request")?;
    let req: Request = serde_json::from_str(&line).map_err(|e| {
        Error::BadInput(format!(
            "not a request ({e}): `repowire remote` is run through ssh by another repowire"
        ))
    })?;
    if req.protocol != PROTOCOL {
        return Err(Error::BadInput(format!(
            "repowire {VERSION} here speaks remote protocol {PROTOCOL}, the asking repowire speaks {}: install the same repowire version on both hosts",
            req.protocol
        ))
        .into());
    }
    let spool = Spool::open(home)?;
    match req.op {
        Op::Ask {
            from,
            to,
            text,
            timeout_secs,
            wait,
            progress,
            chain,
        } => {
            validate_from(&from)?;
            if chain.len() > MAX_CHAIN {
                return Err(Error::BadInput(format!(
                    "a chain of {} waiting askers is more than the {MAX_CHAIN} taken",
                    chain.len()
                ))
                .into());
            }
            for who in &chain {
                validate_from(who)?;
            }
            let timeout = requested_wait(timeout_secs)?;
            let (msg, lock) = ask::ask(&spool, &from, &to, &text, timeout, &chain, false)?;
            reply(&Reply::Id(msg.id.clone()));
            if wait {
                let answer = wait_replying(&spool, &msg.id, timeout, progress)?;
                reply(&Reply::Answer(answer));
            }
            drop(lock);
        }
        Op::Wait {
            id,
            timeout_secs,
            progress,
        } => {
            message::validate_id(&id)?;
            let m = message::load(&spool, &id)?
                .ok_or_else(|| Error::BadInput(format!("there is no query {id} in the spool")))?;
            // Waiting blocks whoever waits, as the asker did: the deadlock check must see it.
            let _waiter = if m.state.is_open() {
                spool.try_lock(&message::waiter_lock(&id))?
            } else {
                None
            };
            let timeout = requested_wait(timeout_secs)?;
            let answer = wait_replying(&spool, &id, timeout, progress)?;
            reply(&Reply::Answer(answer));
        }
        Op::Get { id } => reply(&match ask::check(&spool, &id)? {
            Checked::Answered(text) => Reply::Answer(text),
            Checked::Open { to, stage } => Reply::Pending { to, stage },
        }),
        Op::Notify { from, to, text } => {
            validate_from(&from)?;
            let n = ask::notify(&spool, &from, &to, &text)?;
            reply(&Reply::Notified {
                id: n.id,
                to: n.to,
                status: n.status,
            });
        }
        Op::Broadcast { from, text } => {
            validate_from(&from)?;
            let b = ask::broadcast(&spool, &from, &text)?;
            reply(&Reply::Broadcast {
                now: b.now,
                later: b.later,
            });
        }
        Op::List => reply(&Reply::Peers(peers(&spool)?)),
    }
    Ok(())
}

fn requested_wait(secs: u64) -> Result<Duration, Error> {
    if !(1..=MAX_WAIT_SECS).contains(&secs) {
        return Err(Error::BadInput(format!(
            "timeout_secs must be from 1 to {MAX_WAIT_SECS}"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// Waits for the answer to `id`, replying with each new stage if `progress`. A line `cancel`
/// on stdin withdraws the question if the peer does not have it yet; the end of stdin ends
/// the process.
fn wait_replying(spool: &Spool, id: &str, timeout: Duration, progress: bool) -> Result<String> {
    let cancelled = Arc::new(AtomicBool::new(false));
    {
        let cancelled = cancelled.clone();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                match line {
                    Ok(l) if l.trim() == "cancel" => cancelled.store(true, Ordering::SeqCst),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            // The asker or its connection is gone. Leave as a killed `peer ask` would: the
            // question stays, and its answer is stored when it comes.
            std::process::exit(1);
        });
    }
    let mut last = None;
    let mut report = |p| {
        if last != Some(p) {
            last = Some(p);
            reply(&Reply::Progress(p));
        }
    };
    let answer = ask::wait_answer(
        spool,
        id,
        timeout,
        Some(&|| cancelled.load(Ordering::SeqCst)),
        progress.then_some(&mut report as _),
    )?;
    Ok(answer.text)
}

/// The peers of this spool, for another host's listing.
fn peers(spool: &Spool) -> Result<Vec<PeerInfo>> {
    let peers = peer::all(spool)?;
    let panes = peer::live_panes(&peers);
    let open = message::open_messages(spool)?;
    Ok(peers
        .iter()
        .map(|p| PeerInfo {
            name: p.name.clone(),
            status: peer::status_of(p, &panes).0,
            agent: p.agent.name().to_string(),
            pane: p.pane.clone(),
            path: p.path.clone(),
            last_activity_ms: p.last_activity_ms,
            queued: open.iter().filter(|m| m.to == p.name).count(),
            description: p.description.clone(),
            transport: Some(p.transport().to_string()),
        })
        .collect())
}

/// Writes one reply line. If the asker is gone there is nobody left to tell: exit.
fn reply(r: &Reply) {
    let mut out = std::io::stdout().lock();
    let ok = serde_json::to_writer(&mut out, r).is_ok()
        && out.write_all(b"\n").is_ok()
        && out.flush().is_ok();
    if !ok {
        std::process::exit(1);
    }
}
