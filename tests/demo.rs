//! `repowire demo` as a new user runs it: it needs only tmux, shows the exchange, and leaves
//! nothing behind: not its tmux server, not its files, not a trace in the user's spool or home.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Rw, rw, text};

/// Far more than a demo takes (about 5 s), for a loaded CI machine.
const T: Duration = Duration::from_secs(60);

/// One `repowire demo` run whose HOME, REPOWIRE_HOME and TMPDIR are inside a test directory, so
/// whatever it leaves there shows.
struct Run {
    dir: tempfile::TempDir,
    child: Child,
}

impl Run {
    fn start(args: &[&str]) -> Run {
        Run::start_with(args, |_| {})
    }

    fn start_with(args: &[&str], tweak: impl FnOnce(&mut Command)) -> Run {
        let dir = tempfile::Builder::new().prefix("rwdemo").tempdir().unwrap();
        for d in ["home", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let file = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let mut cmd = rw(&dir.path().join("spool"));
        cmd.arg("demo")
            .args(args)
            .env("HOME", dir.path().join("home"))
            .env("TMPDIR", dir.path().join("tmp"))
            .stdout(file("out"))
            .stderr(file("err"));
        tweak(&mut cmd);
        let child = cmd.spawn().unwrap();
        Run { dir, child }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("out")).unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err")).unwrap()
    }

    /// `tmux -L NAME ARGS` on the demo's server.
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        let server = format!("repowire-demo-{}", self.child.id());
        Command::new("tmux")
            .args(["-L", &server])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn server_running(&self) -> bool {
        self.tmux(&["ls"]).status.success()
    }

    fn wait_for_output(&self, needle: &str) {
        let end = Instant::now() + T;
        while !self.stdout().contains(needle) {
            assert!(
                Instant::now() < end,
                "no {needle:?} in the demo's output:\n{}{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn finish(&mut self) -> ExitStatus {
        let end = Instant::now() + T;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "the demo did not finish:\n{}{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// No tmux server, no temporary directory, no spool, nothing in HOME.
    fn assert_left_nothing(&self) {
        assert!(!self.server_running(), "its tmux server is still running");
        for d in ["home", "tmp"] {
            let left: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join(d))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert!(left.is_empty(), "left behind in {d}: {left:?}");
        }
        assert!(
            !self.dir.path().join("spool").exists(),
            "it touched REPOWIRE_HOME"
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // Only when the test failed half way: never leave a server or a process running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The one directory the demo announces it works in (`Starting them in DIR/{…}`).
fn announced_dir(out: &str) -> &Path {
    let line = out
        .lines()
        .find(|l| l.contains("Starting them in "))
        .unwrap();
    let dir = line.split("Starting them in ").nth(1).unwrap();
    Path::new(dir.split("/{").next().unwrap())
}

#[test]
fn demo_shows_an_ask_and_a_notification_then_leaves_nothing_behind() {
    need_tmux!();
    let mut run = Run::start(&[]);
    let status = run.finish();
    let out = run.stdout();
    assert!(status.success(), "{out}{}", run.stderr());
    let attach = format!("tmux -L repowire-demo-{} attach -t backend", run.child.id());
    let first_step = out.find("Both registered").unwrap();
    assert!(out.find(&attach).is_some_and(|i| i < first_step), "{out}");
    for needle in [
        "frontend  online",
        "frontend asks backend:",
        "Which fields does GET /api/users return?",
        "answered: id, email and created_at",
        "frontend notifies backend: Heads-up: the users page now shows created_at.",
        "received: backend's agent took it as a prompt",
        "backend's turn ended",
        "received   ",
        "Stopped the agents and removed",
    ] {
        assert!(out.contains(needle), "no {needle:?} in:\n{out}");
    }
    // Backend is posted to through its inbox, frontend would be typed into (and announcing
    // the inbox left nothing in HOME's ~/.claude: see assert_left_nothing).
    let listed = |name: &str, via: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(name) && l.contains(&format!(" {via} ")))
    };
    assert!(
        listed("backend", "inbox") && listed("frontend", "tmux"),
        "{out}"
    );
    // In the order it happened.
    let at = |s: &str| out.find(s).unwrap();
    assert!(at("queued") < at("delivered") && at("delivered") < at("answered:"));
    assert!(at("answered:") < at("notifies") && at("notifies") < at("repowire log"));
    assert!(!announced_dir(&out).exists(), "{out}");
    run.assert_left_nothing();
}

#[test]
fn demo_keep_leaves_agents_to_ask_until_ctrl_c_then_cleans_up() {
    need_tmux!();
    let mut run = Run::start(&["--keep"]);
    run.wait_for_output("Press Ctrl-C");
    let socket = text(
        &run.tmux(&["display-message", "-p", "#{socket_path}"])
            .stdout,
    );
    let socket = Path::new(socket.trim_end());
    assert!(socket.exists(), "{}", socket.display());
    // The printed instructions work as printed, from another terminal.
    let out = run.stdout();
    let home = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("REPOWIRE_HOME="))
        .unwrap();
    assert!(
        out.contains(&format!("tmux -L repowire-demo-{}", run.child.id())),
        "{out}"
    );
    let asked = Rw::new(std::path::Path::new(home))
        .args(["peer", "ask", "backend", "hello from a test"])
        .ok();
    assert!(asked.contains("hello from a test"), "{asked}");

    // SAFETY: the pid is our own child's, still running (it waits for this signal).
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let status = run.finish();
    assert!(status.success(), "{}{}", run.stdout(), run.stderr());
    assert!(run.stdout().contains("Stopped the agents and removed"));
    assert!(!Path::new(home).exists());
    // tmux leaves its socket file behind when its server is killed; the demo removes it.
    assert!(!socket.exists(), "{}", socket.display());
    run.assert_left_nothing();
}

/// The demo's temporary directory was 0755 and its agents' transcripts 0644 while it ran.
#[test]
fn the_demos_files_are_private_while_it_runs() {
    need_tmux!();
    let mut run = Run::start(&["--keep"]);
    run.wait_for_output("Press Ctrl-C");
    let out = run.stdout();
    assert_private(announced_dir(&out));
    // SAFETY: the pid is our own child's, still running (it waits for this signal).
    assert_eq!(
        unsafe { libc::kill(run.child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    assert!(run.finish().success(), "{}", run.stderr());
    run.assert_left_nothing();
}

/// `dir`, and every transcript in it, is private.
fn assert_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let transcripts: Vec<_> = crate::util::files::walk(&dir.join("transcripts"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert!(
        !transcripts.is_empty(),
        "no transcript under {}",
        dir.display()
    );
    for t in transcripts {
        assert_eq!(mode(&t), 0o600, "{}", t.display());
        assert_eq!(mode(t.parent().unwrap()), 0o700, "{}", t.display());
    }
}

#[test]
fn demo_without_tmux_says_how_to_install_it() {
    let mut run = Run::start_with(&[], |cmd| {
        cmd.env("PATH", "/nonexistent");
    });
    let status = run.finish();
    assert!(!status.success());
    assert!(
        run.stderr()
            .contains("the demo needs tmux: install it (apt install tmux / brew install tmux)"),
        "{}",
        run.stderr()
    );
    assert!(!run.dir.path().join("spool").exists());
}
