//! The command line without agents: help, bad input and the spool's safety checks. Every bad
//! input is refused with exit status 2 and a message that says what to do, and changes nothing.

use std::os::unix::fs::PermissionsExt;

use crate::util::{Mesh, text};

#[test]
fn help_teaches_each_command() {
    let m = Mesh::new();
    let top = m.ok(["--help"]);
    for cmd in ["peer", "log", "gc", "hook"] {
        assert!(top.contains(cmd), "{cmd} missing from --help:\n{top}");
    }
    assert!(
        !top.contains("standin") && !top.contains("deliver"),
        "{top}"
    );
    let ask = m.ok(["peer", "ask", "--help"]);
    for needle in ["--timeout", "--no-wait", "Exit status", "peer wait"] {
        assert!(ask.contains(needle), "{needle} missing:\n{ask}");
    }
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let m = Mesh::new();
    let long = "x".repeat(40_000);
    let long_name = "n".repeat(65);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["peer", "ask", "../etc", "hi"], "invalid peer name"),
        (vec!["peer", "ask", "a/b", "hi"], "invalid peer name"),
        (vec!["peer", "ask", ".hidden", "hi"], "invalid peer name"),
        (
            vec!["peer", "notify", "bad\u{1b}name", "hi"],
            "invalid peer name",
        ),
        (vec!["peer", "ask", &long_name, "hi"], "invalid peer name"),
        (vec!["peer", "wait", "../../x"], "invalid query id"),
        (
            vec!["peer", "ask", "x", "hi", "--timeout", "soon"],
            "not a duration",
        ),
        (vec!["peer", "broadcast", "   "], "the message is empty"),
        (
            vec!["peer", "broadcast", &long],
            "write the content to a file",
        ),
    ];
    for (args, want) in cases {
        let out = m.run(&args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // Nothing was queued by any of them.
    let queued = std::fs::read_dir(m.home.join("queue")).map_or(0, |d| d.count());
    assert_eq!(queued, 0);
}

#[test]
fn an_unknown_peer_is_exit_status_3() {
    let m = Mesh::new();
    let out = m.run(["peer", "notify", "ghost", "hi"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("unknown peer 'ghost'"));
    let out = m.ok(["peer", "list"]);
    assert!(out.contains("no peers yet"), "{out}");
    assert_eq!(m.ok(["peer", "list", "--json"]).trim(), "[]");
}

#[test]
fn a_spool_others_can_write_is_refused_with_the_fix() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    std::fs::set_permissions(&m.home, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = m.run(["peer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("chmod 700 {}", m.home.display())),
        "{err}"
    );
}

#[test]
fn a_symlinked_spool_directory_is_refused() {
    let m = Mesh::new();
    let elsewhere = m.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(&m.home).unwrap();
    std::os::unix::fs::symlink(&elsewhere, m.home.join("peers")).unwrap();
    let out = m.run(["peer", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_spool_is_private() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    for d in ["", "peers", "queue", "done", "responses", "log", "tmp"] {
        let mode = std::fs::metadata(m.home.join(d))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700, "{d}");
    }
}
