//! The stand-in's terminal: raw mode and bracketed paste, reads whose size tells a paste from
//! typing, and the signals that end a session.

use std::io::{self, Write};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};

use super::POLL_MS;

/// Set from the SIGHUP/SIGTERM handler; the poll loop ends the session.
pub(super) static HANGUP: AtomicBool = AtomicBool::new(false);
/// Set on SIGTERM alone: the end of a stand-in that outlives its pane.
pub(super) static TERMINATED: AtomicBool = AtomicBool::new(false);

pub(super) fn out(text: &str) {
    let mut stdout = io::stdout().lock();
    // The pane may already be gone (SIGHUP); the session must still end.
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

pub(super) fn terminal_width() -> usize {
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

/// Waits up to `POLL_MS` for input, or a writer at the `inbox` socket, and reads what input
/// is there at once: the size of a single read is what tells a paste from typing. `None`
/// means no input arrived, `Some(0)` that the input is gone; the flag, that a writer waits.
pub(super) fn read_input(
    buf: &mut [u8],
    inbox: Option<RawFd>,
) -> io::Result<(Option<usize>, bool)> {
    let mut pfds = [libc::STDIN_FILENO, inbox.unwrap_or(-1)].map(|fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
    // SAFETY: two valid pollfds (a negative fd is ignored).
    match unsafe { libc::poll(pfds.as_mut_ptr(), 2, POLL_MS) } {
        0 => return Ok((None, false)),
        n if n < 0 => return Ok((retry_or(io::Error::last_os_error())?, false)),
        _ => {}
    }
    let posted = pfds[1].revents != 0;
    if pfds[0].revents == 0 {
        return Ok((None, posted));
    }
    // SAFETY: `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    let read = match usize::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => retry_or(io::Error::last_os_error())?,
    };
    Ok((read, posted))
}

fn retry_or(e: io::Error) -> io::Result<Option<usize>> {
    match e.raw_os_error() {
        Some(libc::EINTR | libc::EAGAIN) => Ok(None),
        // A hung-up terminal reads as EIO rather than EOF.
        Some(libc::EIO) => Ok(Some(0)),
        _ => Err(e),
    }
}

/// Raw mode plus bracketed paste for as long as it lives; dropping it (on
/// any return, error or unwind) gives the terminal back as it was.
pub(super) struct Terminal {
    saved: Option<libc::termios>,
}

impl Terminal {
    pub(super) fn enter() -> Result<Self> {
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills `saved`.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            // Not a terminal (input piped in): nothing to switch or restore.
            return Ok(Self { saved: None });
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits `raw`. It clears ISIG (Ctrl-C arrives
        // as 0x03), ICRNL (Enter arrives as CR), IXON and OPOST (so lines
        // end in "\r\n").
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error()).context("switching the terminal to raw mode");
        }
        out("\x1b[?2004h");
        Ok(Self { saved: Some(saved) })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            out("\x1b[?2004l");
            // SAFETY: `saved` came from tcgetattr. Failure (pane gone) is moot.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}

extern "C" fn on_hangup(signal: libc::c_int) {
    if signal == libc::SIGTERM {
        TERMINATED.store(true, Ordering::SeqCst);
    }
    HANGUP.store(true, Ordering::SeqCst);
}

pub(super) fn catch_hangup() -> io::Result<()> {
    for signal in [libc::SIGHUP, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores an
        // atomic. No SA_RESTART, so poll() wakes up at once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_hangup as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}
