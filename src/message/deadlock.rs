//! The deadlock check: who waits for whom, through the open questions whose askers still hold
//! their waiter locks, here and (through the chains questions carry) across hosts.

use std::collections::{HashMap, HashSet};

use anyhow::Result;

use super::{Kind, Message, open_messages, waiter_lock};
use crate::error::Error;
use crate::peer::USER;
use crate::spool::Spool;

/// Who waits for whom here: the open asks whose asker still holds its waiter lock.
fn waits(spool: &Spool) -> Result<Vec<Message>> {
    Ok(open_messages(spool)?
        .into_iter()
        .filter(|m| {
            m.kind == Kind::Ask && !m.fork && m.from != USER && spool.is_locked(&waiter_lock(&m.id))
        })
        .collect())
}

/// The askers waiting, directly or through others, on local peer `name`, as `NAME@HOST`,
/// `name` first: local askers, and askers on other hosts with the chains their questions
/// came with.
pub fn waiting_on(spool: &Spool, name: &str) -> Result<Vec<String>> {
    let here = crate::host::this_host();
    let waits = waits(spool)?;
    let mut out = vec![format!("{name}@{here}")];
    let mut todo = vec![name.to_string()];
    let mut seen = HashSet::from([name.to_string()]);
    while let Some(node) = todo.pop() {
        for m in waits.iter().filter(|m| m.to == node) {
            let remote = m.from.contains('@');
            let asker = if remote {
                m.from.clone()
            } else {
                format!("{}@{here}", m.from)
            };
            for who in std::iter::once(&asker).chain(&m.chain) {
                if !out.contains(who) {
                    out.push(who.clone());
                }
            }
            if !remote && seen.insert(m.from.clone()) {
                todo.push(m.from.clone());
            }
        }
    }
    Ok(out)
}

/// If `from` asking `to` would close a cycle of waiting askers, the cycle as text
/// (`a would wait for b, b is waiting for a (query X)`). A question from another host closes
/// one too when `to`, or a peer here that `to` waits for, is in its `chain`: it waits on the
/// asker over there.
pub(super) fn find_cycle(
    spool: &Spool,
    from: &str,
    to: &str,
    chain: &[String],
) -> Result<Option<String>> {
    if from == to {
        return Err(Error::BadInput(format!(
            "'{from}' cannot ask itself; answer from your own context"
        ))
        .into());
    }
    let mut waits: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for m in self::waits(spool)? {
        waits.entry(m.from.clone()).or_default().push((m.to, m.id));
    }
    let here = if chain.is_empty() {
        String::new()
    } else {
        crate::host::this_host()
    };
    // Where a chain of waits from `to` ends the cycle: back at `from`, or at a peer here that
    // waits, over another host, on `from`.
    let closes = |node: &str| {
        if node == from {
            Some(None)
        } else {
            let qualified = format!("{node}@{here}");
            chain.contains(&qualified).then_some(Some(qualified))
        }
    };
    // Depth-first from `to`.
    let mut path: Vec<(String, String, String)> = Vec::new();
    let mut seen = HashSet::new();
    fn dfs(
        node: &str,
        closes: &dyn Fn(&str) -> Option<Option<String>>,
        waits: &HashMap<String, Vec<(String, String)>>,
        seen: &mut HashSet<String>,
        path: &mut Vec<(String, String, String)>,
    ) -> Option<Option<String>> {
        if let Some(end) = closes(node) {
            return Some(end);
        }
        if !seen.insert(node.to_string()) {
            return None;
        }
        for (next, id) in waits.get(node).into_iter().flatten() {
            path.push((node.to_string(), next.clone(), id.clone()));
            if let Some(end) = dfs(next, closes, waits, seen, path) {
                return Some(end);
            }
            path.pop();
        }
        None
    }
    let Some(across) = dfs(to, &closes, &waits, &mut seen, &mut path) else {
        return Ok(None);
    };
    let mut parts = vec![format!("{from} would wait for {to}")];
    for (a, b, id) in &path {
        parts.push(format!("{a} is waiting for {b} (query {id})"));
    }
    if let Some(qualified) = across {
        parts.push(format!("{qualified} is waiting for {from} across hosts"));
    }
    Ok(Some(parts.join(", ")))
}
