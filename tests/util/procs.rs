//! The processes a test looks at, the same on Linux and macOS: through `ps`, and through
//! repowire's own per-platform reader (`repowire::process`).

use std::process::Command;

use repowire::process::Process;

/// Whether process `pid` still runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    Process::of(pid).is_some()
}

/// Every process: (pid, parent pid, command line).
pub fn table() -> Vec<(u32, u32, String)> {
    let out = Command::new("ps")
        .args(["-A", "-ww", "-o", "pid=,ppid=,args="])
        .output()
        .expect("ps runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse().ok()?;
            let ppid = f.next()?.parse().ok()?;
            Some((pid, ppid, f.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// The children of process `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    table()
        .into_iter()
        .filter(|(_, ppid, _)| *ppid == pid)
        .map(|(p, _, _)| p)
        .collect()
}

/// Every process under `roots` (by parent id), roots included.
pub fn trees(roots: &[u32]) -> Vec<u32> {
    let table = table();
    let mut out: Vec<u32> = roots.to_vec();
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        for (child, _, _) in table.iter().filter(|(_, pp, _)| *pp == p) {
            if !out.contains(child) {
                out.push(*child);
            }
        }
        i += 1;
    }
    out
}

/// The processes whose command line is `repowire WORD …` for one of `words`, and whose
/// environment holds `var` (as `NAME=VALUE`): their pids and command lines.
pub fn repowire_with_env(words: &[&str], var: &str) -> Vec<(u32, String)> {
    table()
        .into_iter()
        .filter(|(_, _, args)| {
            let mut a = args.split_whitespace();
            a.next().is_some_and(|p| p.ends_with("repowire"))
                && a.next().is_some_and(|w| words.contains(&w))
        })
        .filter(|(pid, _, _)| environ_has(*pid, var))
        .map(|(pid, _, args)| (pid, args))
        .collect()
}

/// Whether the environment of process `pid` (one of ours) holds `var`.
#[cfg(target_os = "linux")]
fn environ_has(pid: u32, var: &str) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ.split(|&b| b == 0).any(|v| v == var.as_bytes())
}

/// Whether the environment of process `pid` (one of ours) holds `var`: macOS's `ps -E`
/// prints it after the command line.
#[cfg(target_os = "macos")]
fn environ_has(pid: u32, var: &str) -> bool {
    let out = Command::new("ps")
        .args(["-E", "-ww", "-o", "command=", "-p", &pid.to_string()])
        .output()
        .expect("ps runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w == var)
}
