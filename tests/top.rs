//! `repowire top` in a private tmux server beside stand-in agents, read with `capture-pane`:
//! the peers, a peer busy while it answers and idle after, the open ask as `asker → peer`
//! with its state, a new message in the latest list, and `q` giving the terminal back.

use std::time::Duration;

use crate::util::{Mesh, bin, spawn_piped, text};

const T: Duration = Duration::from_secs(20);

/// What `top` in session `top` shows now.
fn screen(m: &Mesh) -> String {
    text(&m.tmux(["capture-pane", "-p", "-t", "=top:"]).stdout)
}

fn shows(m: &Mesh, what: &str) -> bool {
    m.eventually(T, || screen(m).contains(what))
}

/// A peer's line in the peers table contains all of `words`.
fn peer_line(m: &Mesh, name: &str, words: &[&str]) -> bool {
    m.eventually(T, || {
        screen(m)
            .lines()
            .any(|l| l.contains(&format!("│{name} ")) && words.iter().all(|w| l.contains(w)))
    })
}

/// Starts `repowire top` in session `top`, an 80x24 window; after it exits, the shell says
/// with what status, and whether the terminal is back in canonical (cooked) mode.
fn start_top(m: &Mesh) {
    let script = format!(
        "{} top; echo \"top exited $?\"; stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon; sleep 60",
        bin().display()
    );
    let work = m.dir.path().display().to_string();
    let home = format!("REPOWIRE_HOME={}", m.home.display());
    let out = m.tmux([
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "24",
        "-c",
        &work,
        "-e",
        &home,
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(shows(m, "repowire top"), "{}", screen(m));
}

/// The terminal as `top` left it: its exit status 0, cooked mode, the main screen back.
fn assert_restored(m: &Mesh) {
    assert!(shows(m, "top exited 0"), "{}", screen(m));
    // The shell prints `icanon` or `-icanon` (still raw) after that line.
    let mode_shown = |s: &str| s.lines().any(|l| l == "icanon" || l == "-icanon");
    assert!(m.eventually(T, || mode_shown(&screen(m))), "{}", screen(m));
    let after = screen(m);
    assert!(
        after.lines().any(|l| l == "icanon"),
        "the terminal stayed raw: {after}"
    );
    assert!(
        !after.contains("repowire top"),
        "the alternate screen stayed: {after}"
    );
}

#[test]
fn top_shows_peers_waits_and_messages_live_and_restores_the_terminal() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.warm_agent("alpha");
    let _b = m.warm_agent("beta");
    let _c = m.agent_outside_tmux("gamma", &["--inbox"]);
    start_top(&m);
    assert!(
        peer_line(&m, "alpha", &["claude", "tmux", "online"]),
        "{}",
        screen(&m)
    );
    // How each is reached.
    assert!(shows(&m, "VIA"), "{}", screen(&m));
    assert!(peer_line(&m, "gamma", &["inbox"]), "{}", screen(&m));
    assert!(peer_line(&m, "beta", &["online"]), "{}", screen(&m));
    assert!(shows(&m, "nobody waits"), "{}", screen(&m));

    // alpha asks beta, which takes three seconds: beta busy, the ask answering.
    let pa = m.pane("alpha");
    let asker =
        spawn_piped(
            m.cmd_in(&pa)
                .args(["peer", "ask", "beta", "SLEEP 3\nREPLY forty-two"]),
        );
    assert!(
        peer_line(&m, "beta", &["busy", "alpha: SLEEP 3"]),
        "{}",
        screen(&m)
    );
    assert!(shows(&m, "alpha → beta"), "{}", screen(&m));
    assert!(
        m.eventually(T, || screen(&m)
            .lines()
            .any(|l| l.contains("alpha → beta") && l.contains("answering"))),
        "{}",
        screen(&m)
    );
    let out = asker.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "forty-two\n");
    // Idle again, nobody waits, and the answer is the newest message.
    assert!(peer_line(&m, "beta", &["online"]), "{}", screen(&m));
    assert!(shows(&m, "nobody waits"), "{}", screen(&m));
    assert!(
        shows(&m, "answered   beta → alpha: forty-two"),
        "{}",
        screen(&m)
    );

    // A notification appears too.
    m.ok(["peer", "notify", "alpha", "the build is green"]);
    assert!(
        shows(&m, "user → alpha: the build is green"),
        "{}",
        screen(&m)
    );

    // Enter: alpha's (selected) queue and history; ? help; q quits.
    m.tmux(["send-keys", "-t", "=top:", "Enter"]);
    assert!(shows(&m, "(Enter closes)"), "{}", screen(&m));
    m.tmux(["send-keys", "-t", "=top:", "Enter"]);
    m.tmux(["send-keys", "-t", "=top:", "?"]);
    assert!(shows(&m, "select a peer"), "{}", screen(&m));
    m.tmux(["send-keys", "-t", "=top:", "q"]);
    assert_restored(&m);
}

#[test]
fn top_quits_on_ctrl_c_and_gives_the_terminal_back() {
    need_tmux!();
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    start_top(&m);
    assert!(shows(&m, "0 peers"), "{}", screen(&m));
    m.tmux(["send-keys", "-t", "=top:", "C-c"]);
    assert_restored(&m);
}

#[test]
fn top_without_a_terminal_says_what_to_use_instead() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    let out = m.run(["top"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("needs a terminal")
            && err.contains("peer list --json")
            && err.contains("log --follow --json"),
        "{err}"
    );
}
