//! Processes on macOS: `proc_pidinfo` (libproc) for a process's state, parent, process group,
//! terminal's foreground group, start and name; `getsid` for its session; `sysctl`
//! (`KERN_PROCARGS2`) for its arguments.

use std::ffi::CStr;

use super::Stat;

/// A process's BSD info, if it exists and may be read.
fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
    let pid = libc::c_int::try_from(pid).ok()?;
    // SAFETY: proc_bsdinfo is plain data, for which all zeroes is a valid value.
    let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: the buffer is a proc_bsdinfo of `size` bytes, which PROC_PIDTBSDINFO fills.
    let n =
        unsafe { libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size) };
    (n == size).then_some(info)
}

pub(super) fn stat(pid: u32) -> Option<Stat> {
    let info = bsd_info(pid)?;
    // SAFETY: getsid has no preconditions; it fails (-1) for a process we may not see.
    let session = unsafe { libc::getsid(pid as libc::pid_t) };
    if session < 0 {
        return None;
    }
    Some(Stat {
        dead: info.pbi_status == libc::SZOMB,
        ppid: info.pbi_ppid,
        pgrp: i64::from(info.pbi_pgid),
        session: i64::from(session),
        // No controlling terminal: no foreground group (as Linux's -1).
        tpgid: match info.e_tpgid {
            0 => -1,
            g => i64::from(g),
        },
        start: info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec,
    })
}

/// `KERN_PROCARGS2`: the argument count, the executable's path, padding, then the arguments,
/// each NUL-terminated, then the environment.
pub(super) fn command_line(pid: u32) -> Vec<String> {
    let Some(raw) = procargs(pid) else {
        return Vec::new();
    };
    parse_procargs(&raw)
}

fn procargs(pid: u32) -> Option<Vec<u8>> {
    let mut mib = [
        libc::CTL_KERN,
        libc::KERN_PROCARGS2,
        libc::c_int::try_from(pid).ok()?,
    ];
    let mut size: libc::size_t = 0;
    // SAFETY: a null buffer asks for the size, which is written to `size`.
    let sized = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            std::ptr::null_mut(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if sized != 0 || size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` holds `size` bytes; sysctl writes at most that and says how many.
    let read = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if read != 0 {
        return None;
    }
    buf.truncate(size);
    Some(buf)
}

/// The environment process `pid` started with, as `NAME=VALUE` strings (`None`: not
/// readable, another user's process).
pub(super) fn environ(pid: u32) -> Option<Vec<Vec<u8>>> {
    Some(parse_environ(&procargs(pid)?))
}

/// The argument count of a `KERN_PROCARGS2` buffer, and the NUL-separated strings after the
/// executable's path and its NUL padding: the arguments, then the environment.
fn procargs_strings(raw: &[u8]) -> Option<(usize, impl Iterator<Item = &[u8]>)> {
    let argc = usize::try_from(i32::from_ne_bytes(raw.get(..4)?.try_into().ok()?)).ok()?;
    let rest = &raw[4..];
    let path_end = rest.iter().position(|&b| b == 0)?;
    let start = rest[path_end..]
        .iter()
        .position(|&b| b != 0)
        .map_or(rest.len(), |i| path_end + i);
    Some((argc, rest[start..].split(|&b| b == 0)))
}

/// The arguments in a `KERN_PROCARGS2` buffer.
fn parse_procargs(raw: &[u8]) -> Vec<String> {
    let Some((argc, strings)) = procargs_strings(raw) else {
        return Vec::new();
    };
    strings
        .take(argc)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The environment in a `KERN_PROCARGS2` buffer: the strings after the arguments, up to the
/// first empty one.
fn parse_environ(raw: &[u8]) -> Vec<Vec<u8>> {
    let Some((argc, strings)) = procargs_strings(raw) else {
        return Vec::new();
    };
    strings
        .skip(argc)
        .take_while(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

pub(super) fn name(pid: u32) -> Option<String> {
    let info = bsd_info(pid)?;
    // SAFETY: pbi_comm is NUL-terminated within its MAXCOMLEN bytes.
    let comm = unsafe { CStr::from_ptr(info.pbi_comm.as_ptr()) };
    Some(comm.to_string_lossy().into_owned())
}

/// Runs `f`, a write to `fd`, with SIGPIPE off for that pipe (`F_SETNOSIGPIPE`).
pub(super) fn without_sigpipe<T>(
    fd: std::os::fd::RawFd,
    f: impl FnOnce() -> std::io::Result<T>,
) -> std::io::Result<T> {
    // SAFETY: fcntl on a descriptor the caller holds open.
    unsafe {
        libc::fcntl(fd, libc::F_SETNOSIGPIPE, 1);
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_procargs() {
        let mut raw = 2i32.to_ne_bytes().to_vec();
        raw.extend_from_slice(b"/bin/codex\0\0\0\0codex\0app-server\0HOME=/x\0");
        assert_eq!(parse_procargs(&raw), ["codex", "app-server"]);
        assert!(parse_procargs(b"").is_empty());
    }

    #[test]
    fn parses_the_environment_after_the_arguments() {
        let mut raw = 1i32.to_ne_bytes().to_vec();
        raw.extend_from_slice(b"/bin/claude\0\0\0claude\0HOME=/x\0PATH=/bin:/usr/bin\0\0\0junk");
        assert_eq!(
            parse_environ(&raw),
            [b"HOME=/x".to_vec(), b"PATH=/bin:/usr/bin".to_vec()]
        );
        assert!(parse_environ(b"").is_empty());
    }
}
