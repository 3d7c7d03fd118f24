//! `repowire config` and `repowire gc`: the spool's settings, and pruning what is finished.

use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::spool::Spool;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting with its value (defaults for what config.yaml leaves out)
    Show,
    /// Print the path of config.yaml
    Path,
}

pub fn config(spool: &Spool, cmd: ConfigCommand) -> Result<()> {
    let path = spool.path("config.yaml");
    match cmd {
        ConfigCommand::Path => println!("{}", path.display()),
        ConfigCommand::Show => {
            let config = Config::load(spool)?;
            if path.exists() {
                println!("# {} (defaults for what it leaves out)", path.display());
            } else {
                println!(
                    "# {} does not exist: these are the defaults",
                    path.display()
                );
            }
            print!("{}", config.show());
        }
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Prune finished messages, their answers and days of history older than this (an
    /// answer nobody has received yet stays; `30d`, `12h`, ...)
    #[arg(long, default_value = "7d", value_name = "AGE", value_parser = crate::time::parse_age)]
    pub older_than: Duration,
}

pub fn gc(spool: &Spool, args: GcArgs) -> Result<()> {
    let r = crate::gc::run(spool, args.older_than)?;
    println!(
        "removed {} finished messages, {} answers, {} days of history, {} temporary files, {} lock files",
        r.messages, r.responses, r.history_days, r.temp_files, r.lock_files
    );
    if r.unread_kept > 0 {
        println!(
            "kept {} older answers nobody has received yet (`repowire peer wait ID` fetches one)",
            r.unread_kept
        );
    }
    Ok(())
}
