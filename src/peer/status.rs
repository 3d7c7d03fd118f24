//! A peer's status, derived when asked: from the agent's process when its session-start hook
//! could record it, else from the tmux panes that still run the agent.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Peer;
use crate::tmux::{Pane, Server};

/// A peer's status, derived when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Online,
    Busy,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
}

/// The live panes of every tmux server the peers live on, one `list-panes -a` per server;
/// only where a peer's status needs them (see [`status_of`]).
pub fn live_panes(peers: &[Peer]) -> HashMap<PathBuf, Vec<Pane>> {
    let mut out: HashMap<PathBuf, Vec<Pane>> = HashMap::new();
    for p in peers {
        if p.online
            && p.agent_process.is_none()
            && !p.pane.is_empty()
            && !out.contains_key(&p.tmux_socket)
        {
            let panes = Server::at(&p.tmux_socket).panes().unwrap_or_default();
            out.insert(p.tmux_socket.clone(), panes);
        }
    }
    out
}

/// A peer's status from its record and its server's panes, with the reason when offline.
pub fn status_of(peer: &Peer, panes: &HashMap<PathBuf, Vec<Pane>>) -> (Status, &'static str) {
    if !peer.online {
        // `repowire up` gave it its pane; its agent has not registered yet.
        if peer.started_ms == 0 && peer.pinned {
            return (Status::Offline, "its agent has not started yet");
        }
        return (Status::Offline, "its session ended");
    }
    if let Some(agent) = &peer.agent_process {
        if !agent.alive() {
            return (Status::Offline, "its agent exited");
        }
        return if peer.turn.busy {
            (Status::Busy, "")
        } else {
            (Status::Online, "")
        };
    }
    if peer.pane.is_empty() {
        // Outside tmux, the session's end (SessionEnd) is all there is to go by.
        return (Status::Online, "");
    }
    let pane = panes
        .get(&peer.tmux_socket)
        .and_then(|ps| ps.iter().find(|p| p.id == peer.pane));
    let Some(pane) = pane else {
        return (Status::Offline, "its tmux pane is gone");
    };
    if pane.dead {
        return (Status::Offline, "the program in its pane exited");
    }
    if peer.turn.busy {
        return (Status::Busy, "");
    }
    // A tool the agent runs never becomes the pane's foreground command, so an idle pane
    // showing another command means the agent exited back to a shell.
    if let Some(cmd) = &peer.agent_command
        && *cmd != pane.command
    {
        return (
            Status::Offline,
            "its agent is no longer running in the pane",
        );
    }
    (Status::Online, "")
}

/// Status of one peer (one tmux call).
pub fn status(peer: &Peer) -> (Status, &'static str) {
    status_of(peer, &live_panes(std::slice::from_ref(peer)))
}
