use std::io::ErrorKind;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = repowire::cli::Cli::parse();
    match repowire::run(cli) {
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
