//! Processes on Linux, through `/proc`.

use super::Stat;

/// The fields of `/proc/PID/stat` repowire reads.
pub(super) fn stat(pid: u32) -> Option<Stat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let f: Vec<&str> = raw[raw.rfind(')')? + 1..].split_whitespace().collect();
    Some(Stat {
        dead: matches!(*f.first()?, "Z" | "X" | "x"),
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        tpgid: f.get(5)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// `/proc/PID/cmdline`: the program and its arguments.
pub(super) fn command_line(pid: u32) -> Vec<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let mut argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if argv.last().is_some_and(String::is_empty) {
        argv.pop();
    }
    argv
}

/// `/proc/PID/environ`: the environment it started with, as `NAME=VALUE` strings (`None`:
/// not readable, another user's process).
pub(super) fn environ(pid: u32) -> Option<Vec<Vec<u8>>> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|v| !v.is_empty())
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

/// `/proc/PID/comm`: the program's name.
pub(super) fn name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(comm.trim_end_matches('\n').to_string())
}

/// Runs `f`, a write to `_fd`, with SIGPIPE blocked for this thread (Linux sends the SIGPIPE
/// of a write to the thread that wrote), then takes the SIGPIPE it left pending.
pub(super) fn without_sigpipe<T>(
    _fd: std::os::fd::RawFd,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    // SAFETY: the sets are initialized by sigemptyset before use; the masks are this thread's.
    unsafe {
        let mut pipe: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pipe);
        libc::sigaddset(&mut pipe, libc::SIGPIPE);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old);
        let res = f();
        let none = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        while libc::sigtimedwait(&pipe, std::ptr::null_mut(), &none) == libc::SIGPIPE {}
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        res
    }
}
