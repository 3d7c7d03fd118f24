//! The processes repowire looks at: an agent's own process (a session lasts as long as it
//! runs) and the ancestry of the process asking. What the operating system answers
//! differently (a process's parent, session, process group, start, name and arguments) is
//! in one file per platform: `linux` (`/proc`) and `macos` (`proc_pidinfo`, `sysctl`).

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod sys;
#[cfg(target_os = "macos")]
#[path = "macos.rs"]
mod sys;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
compile_error!("repowire runs on Linux and macOS (on Windows, in WSL 2)");

use serde::{Deserialize, Serialize};

/// A process, told apart from a later one with the same pid by its start time.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// When it started: clock ticks after boot on Linux (`/proc/PID/stat`, field 22),
    /// microseconds since the epoch on macOS. Only compared, on the machine that read it.
    pub start: u64,
}

impl Process {
    /// Process `pid`, if it runs and may be read.
    pub fn of(pid: u32) -> Option<Process> {
        let s = Stat::read(pid)?;
        (!s.dead).then_some(Process {
            pid,
            start: s.start,
        })
    }

    /// Whether this very process still runs (not exited, not a zombie).
    pub fn alive(&self) -> bool {
        Stat::read(self.pid).is_some_and(|s| s.start == self.start && !s.dead)
    }
}

/// The few facts of a process repowire reads.
struct Stat {
    /// Exited, or a zombie.
    dead: bool,
    ppid: u32,
    pgrp: i64,
    session: i64,
    /// The foreground process group of the process's terminal, or -1.
    tpgid: i64,
    /// When it started, in the platform's unit (see [`Process::start`]).
    start: u64,
}

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        sys::stat(pid)
    }
}

/// The agent a hook runs for: of the hook's ancestors, the first that leads the foreground
/// job of the pane whose first process is `pane_pid` (every process in a pane is in that
/// session). Agents run hooks in a session of their own (Claude Code) or in theirs (the
/// stand-in); either way this finds the agent, or the job that wraps it, which ends with it.
/// `None` when the hook does not descend from that pane's foreground job.
pub fn agent_process(pane_pid: u32) -> Option<Process> {
    nearest_ancestor(64, |pid, s| {
        Some(s.session == i64::from(pane_pid) && i64::from(pid) == s.pgrp && s.pgrp == s.tpgid)
    })
}

/// The nearest ancestor of this process, at most `depth` generations up, that `is` (given its
/// pid and stat; `None`: it cannot be read) picks; `None` when none is, or it has exited.
fn nearest_ancestor(depth: usize, is: impl Fn(u32, &Stat) -> Option<bool>) -> Option<Process> {
    let mut pid = Stat::read(std::process::id())?.ppid;
    for _ in 0..depth {
        let s = Stat::read(pid)?;
        if is(pid, &s)? {
            return (!s.dead).then_some(Process {
                pid,
                start: s.start,
            });
        }
        if s.ppid <= 1 {
            return None;
        }
        pid = s.ppid;
    }
    None
}

/// The ancestors of this process, nearest first, up to (not including) init; at most 64.
pub fn ancestors() -> impl Iterator<Item = u32> {
    let mut pid = std::process::id();
    std::iter::from_fn(move || {
        let ppid = Stat::read(pid)?.ppid;
        (ppid > 1).then(|| {
            pid = ppid;
            ppid
        })
    })
    .take(64)
}

/// The command line of process `pid`: its program and arguments (empty when it cannot be
/// read).
pub fn command_line(pid: u32) -> Vec<String> {
    sys::command_line(pid)
}

/// Writes `bytes` to `stdin`, a pipe to a child that may have exited already: that is an
/// error (EPIPE), never the SIGPIPE that would end this process. Commands a person runs
/// restore SIGPIPE's default (see `lib::run`), so that `repowire log | head` ends quietly.
pub fn write_to_child<W>(stdin: &mut W, bytes: &[u8]) -> std::io::Result<()>
where
    W: std::io::Write + std::os::fd::AsRawFd,
{
    let fd = stdin.as_raw_fd();
    sys::without_sigpipe(fd, || stdin.write_all(bytes).and_then(|()| stdin.flush()))
}

/// The environment `process` started with, while it still runs: `NAME=VALUE` pairs; `None`
/// when it has exited or is not readable (another user's).
pub fn environ(process: Process) -> Option<Vec<(std::ffi::OsString, std::ffi::OsString)>> {
    use std::os::unix::ffi::OsStrExt;
    if !process.alive() {
        return None;
    }
    let vars = sys::environ(process.pid)?;
    // Read from the process that was asked for, not one that took its pid since.
    if !process.alive() {
        return None;
    }
    Some(
        vars.iter()
            .filter_map(|v| {
                let eq = v.iter().position(|&b| b == b'=').filter(|&i| i > 0)?;
                let os = |b: &[u8]| std::ffi::OsStr::from_bytes(b).to_os_string();
                Some((os(&v[..eq]), os(&v[eq + 1..])))
            })
            .collect(),
    )
}

/// Whether this system lets repowire read its own process (a sandbox may not).
pub fn readable() -> bool {
    Stat::read(std::process::id()).is_some()
}

/// The agent a hook runs for when it has no pane to go by: the nearest ancestor that is not a
/// shell (agents run a hook's command line through `sh -c`).
pub fn hook_agent() -> Option<Process> {
    nearest_ancestor(16, |pid, _| {
        let name = sys::name(pid)?;
        Some(!matches!(
            name.as_str(),
            "sh" | "bash" | "dash" | "zsh" | "fish" | "ksh" | "env"
        ))
    })
}

/// The arguments of process `pid` after its program (empty when it cannot be read).
pub fn args(pid: u32) -> Vec<String> {
    command_line(pid).into_iter().skip(1).collect()
}

/// This binary's path, for starting helpers (a deliverer, a fork's runner, housekeeping).
/// When the file was replaced while this process ran (`cargo install` of a new repowire while
/// an agent's MCP server runs), Linux names it `PATH (deleted)`: the new binary at PATH is
/// the one to start.
pub fn this_binary() -> std::io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    if exe.exists() {
        return Ok(exe);
    }
    let replaced = exe
        .to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map(std::path::PathBuf::from)
        .filter(|p| p.is_file());
    Ok(replaced.unwrap_or(exe))
}

/// Starts this binary with `args` in the background, for the spool at `home`: in a session of
/// its own, so that it outlives a hook or CLI that exits at once and gets none of the
/// terminal's signals, with no input or output. Returns at once.
pub fn start_helper(args: &[&str], home: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(this_binary()?);
    cmd.args(args)
        .env("REPOWIRE_HOME", home)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // Reaped without waiting: a thread dies with us, and then it is reparented instead.
    std::thread::spawn(move || child.wait());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The platform's reader (`sys`) tells this very process as the kernel knows it.
    #[test]
    fn reads_its_own_process() {
        let me = std::process::id();
        let s = Stat::read(me).expect("its own process");
        assert!(!s.dead);
        assert_eq!(s.ppid, std::os::unix::process::parent_id());
        // SAFETY: getpgrp and getsid have no preconditions.
        assert_eq!(s.pgrp, i64::from(unsafe { libc::getpgrp() }));
        assert_eq!(s.session, i64::from(unsafe { libc::getsid(0) }));
        assert!(Stat::read(u32::MAX).is_none());
        assert_eq!(
            command_line(me).first().map(String::as_str),
            std::env::args().next().as_deref()
        );
        assert!(sys::name(me).is_some_and(|n| !n.is_empty()));
        assert_eq!(Process::of(me).map(|p| p.pid), Some(me));
        assert!(Process::of(me).unwrap().alive());
        assert!(readable());
    }

    /// `peer broadcast --all` died of SIGPIPE, silently, when an ssh it had just started
    /// exited before reading the request (an unreachable host), on a loaded machine.
    #[test]
    fn a_write_to_a_child_that_is_gone_is_an_error_not_a_sigpipe() {
        // In a child process of its own, with SIGPIPE's default as a person's command has.
        // SAFETY: the child only calls async-signal-safe functions (signal, pipe, close,
        // pthread_sigmask, write, sigtimedwait, _exit) before it exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                let mut fds = [0; 2];
                libc::pipe(fds.as_mut_ptr());
                libc::close(fds[0]);
                let mut w = std::mem::ManuallyDrop::new(
                    <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
                );
                let res = write_to_child(&mut *w, b"request\n");
                let broken = res.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe);
                libc::_exit(if broken { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: `pid` is our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status),
            "killed by signal {}",
            libc::WTERMSIG(status)
        );
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the write did not fail with EPIPE"
        );
    }
}
