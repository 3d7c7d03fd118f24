use std::ffi::OsString;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    // The agents' hooks skip clap (see cli::hook_args).
    let result = match repowire::cli::hook_args(args.get(1..).unwrap_or_default()) {
        Some((event, agent)) => {
            let home = std::env::var_os("REPOWIRE_HOME").map(PathBuf::from);
            repowire::home(home).map(|home| repowire::hook::run(&home, event, agent))
        }
        None => repowire::run(repowire::cli::Cli::parse_from(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed pipe (`repowire log | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("repowire: {e:#}");
            let code = e
                .downcast_ref::<repowire::error::Error>()
                .map_or(1, repowire::error::Error::exit_code);
            ExitCode::from(code)
        }
    }
}
