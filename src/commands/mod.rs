//! What each CLI command group does, with its clap arguments beside the code that runs it:
//! `peer` (talking to peers), `log` (the history), `spool` (`config` and `gc`). Results are
//! printed for people (tables, progress) and for scripts (`--json`).

mod log;
mod peer;
mod spool;

pub use log::{LogArgs, log};
pub use peer::{PeerCommand, peer};
pub use spool::{ConfigCommand, GcArgs, config, gc};
