//! One integration-test binary, so the crate links once. Every test runs the real `repowire`
//! binary against a temporary spool; the mesh tests use a private tmux server.

#[macro_use]
mod util;

mod agents;
mod claude;
mod claude_inbox;
mod cli;
mod corrupt;
mod demo;
mod faults;
mod fork;
mod hooks;
mod hostile;
mod inbox;
#[cfg(target_os = "linux")]
mod linux_faults;
mod load;
mod man;
mod mcp;
mod mesh;
mod opencode_inbox;
mod pi;
mod remote;
mod setup;
mod setup_agents;
mod structure;
mod team;
mod top;
mod typing;
mod versions;
