//! `repowire log`: the history, as text or JSON lines, and followed as it grows.

use std::io::{Read, Write};
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::history::{self, Entry};
use crate::message;
use crate::peer;
use crate::spool::Spool;
use crate::time;

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing new entries as they come
    #[arg(short, long)]
    pub follow: bool,
    /// Only messages from or to this peer
    #[arg(long, value_name = "NAME")]
    pub peer: Option<String>,
    /// Print the raw JSON lines
    #[arg(long)]
    pub json: bool,
}

pub fn log(spool: &Spool, args: LogArgs) -> Result<()> {
    if let Some(p) = &args.peer {
        peer::validate_name(p).or_else(|e| if p == peer::USER { Ok(()) } else { Err(e) })?;
    }
    let mut out = std::io::stdout().lock();
    let mut offsets: std::collections::HashMap<std::path::PathBuf, u64> = Default::default();
    let mut print_new = |out: &mut std::io::StdoutLock| -> Result<()> {
        for f in history::files(spool)? {
            let start = offsets.get(&f).copied().unwrap_or(0);
            let mut file = crate::spool::open_private(&f, std::fs::OpenOptions::new().read(true))?;
            let len = file.metadata()?.len();
            if len <= start {
                continue;
            }
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            file.take(len - start).read_to_end(&mut buf)?;
            // Only whole lines: a line being appended right now is read next time.
            let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            offsets.insert(f.clone(), start + whole as u64);
            for line in buf[..whole]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                let Ok(e) = serde_json::from_slice::<Entry>(line) else {
                    continue;
                };
                if args
                    .peer
                    .as_ref()
                    .is_some_and(|p| *p != e.from && *p != e.to)
                {
                    continue;
                }
                if args.json {
                    out.write_all(line)?;
                    out.write_all(b"\n")?;
                } else {
                    writeln!(out, "{}", format_entry(&e))?;
                }
            }
        }
        out.flush()?;
        Ok(())
    };
    print_new(&mut out)?;
    if !args.follow {
        return Ok(());
    }
    let watch = crate::wait::Watch::new(&[spool.path("log")]);
    loop {
        watch.wait(Duration::from_secs(1));
        print_new(&mut out)?;
    }
}

fn format_entry(e: &Entry) -> String {
    let what = match e.event {
        history::Event::Sent => format!("{:?}", e.kind).to_lowercase(),
        ev => format!("{ev:?}").to_lowercase(),
    };
    let arrow = match e.event {
        history::Event::Answered => format!("{} → {}", e.to, e.from),
        _ => format!("{} → {}", e.from, e.to),
    };
    let mut line = format!(
        "{}  {:9}  {}  {}",
        time::format_utc(e.ts_ms),
        what,
        e.id,
        arrow
    );
    if let Some(t) = &e.text {
        let first: String = message::neutralize(t)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(100)
            .collect();
        line.push_str(": ");
        line.push_str(&first);
        if t.lines().count() > 1 || first.chars().count() == 100 {
            line.push('…');
        }
    }
    if let Some(err) = &e.error {
        line.push_str(&format!(" ({err})"));
    }
    line
}
