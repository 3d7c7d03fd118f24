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
    let err = m.fails(["peer", "list"], 1);
    assert!(err.contains("symbolic link"), "{}", err);
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

#[test]
fn completions_cover_every_subcommand_in_each_shell() {
    let m = Mesh::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = m.ok(["completions", shell]);
        for cmd in [
            "peer",
            "ask",
            "config",
            "completions",
            "demo",
            "setup",
            "status",
        ] {
            assert!(script.contains(cmd), "{shell}: no {cmd} in:\n{script}");
        }
    }
    let bash = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut bash) = bash else {
        crate::util::skipped("bash -n (no bash here)");
        return;
    };
    use std::io::Write;
    let script = m.ok(["completions", "bash"]);
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let checked = bash.wait_with_output().unwrap();
    assert!(checked.status.success(), "{}", text(&checked.stderr));
}

#[test]
fn config_path_is_config_yaml_in_the_spool() {
    let m = Mesh::new();
    let path = m.ok(["config", "path"]);
    assert_eq!(
        path.trim_end(),
        m.home.join("config.yaml").to_str().unwrap()
    );
}

#[test]
fn config_show_without_a_file_lists_every_key_with_its_default() {
    let m = Mesh::new();
    let out = m.ok(["config", "show"]);
    assert!(
        out.contains("does not exist: these are the defaults"),
        "{out}"
    );
    for line in [
        "ask_timeout: 120s",
        "mcp_ask_timeout: 300s",
        "naming: repository",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains("# default:"), "{out}");
    assert!(!m.home.join("config.yaml").exists());
}

#[test]
fn config_show_marks_a_setting_that_differs_from_its_default() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    std::fs::write(m.home.join("config.yaml"), "ask_timeout: 5m\n").unwrap();
    let out = m.ok(["config", "show"]);
    assert!(
        out.lines()
            .any(|l| l == "ask_timeout: 300s  # default: 120s"),
        "{out}"
    );
    assert!(out.lines().any(|l| l == "naming: repository"), "{out}");
}

/// Runs `config show` on each `(config.yaml, what the error must say)`: it must fail, name
/// the file and say each of `wants`, and leave the file as it was.
fn assert_config_refused(m: &Mesh, cases: &[(&str, &[&str])]) {
    let path = m.home.join("config.yaml");
    for (content, wants) in cases {
        std::fs::write(&path, content).unwrap();
        let out = m.run(["config", "show"]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{content:?} accepted");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        for want in *wants {
            assert!(err.contains(want), "{content:?}: no {want:?} in: {err}");
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), *content);
    }
}

#[test]
fn a_bad_config_is_refused_naming_its_line_and_left_as_it_is() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    assert_config_refused(
        &m,
        &[
            (
                "naming: directory\nask_timout: 5s\n",
                &["unknown field `ask_timout`", "line 2"],
            ),
            (
                "ask_timeout: 5s\nnaming: random\n",
                &["unknown variant `random`", "line 2"],
            ),
        ],
    );
}

/// serde_yaml gives no line for an error on the first line, and puts a bad duration on the line
/// where the settings begin rather than its own.
#[test]
fn a_bad_duration_or_a_mistake_on_the_first_line_still_names_its_line() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    assert_config_refused(
        &m,
        &[
            (
                "ask_timout: 5s\n",
                &["unknown field `ask_timout`", "line 1"],
            ),
            (
                "ask_timeout: soon\n",
                &["'soon' is not a duration", "line 1"],
            ),
            (
                "naming: directory\nask_timeout: soon\n",
                &["'soon' is not a duration", "line 2"],
            ),
        ],
    );
}

#[test]
fn peer_ask_with_a_broken_config_says_which_file_is_wrong() {
    let m = Mesh::new();
    m.ok(["peer", "list"]);
    let path = m.home.join("config.yaml");
    std::fs::write(&path, "ask_timeout: soon\n").unwrap();
    let out = m.run(["peer", "ask", "backend", "hi"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{} is not valid", path.display())) && err.contains("not a duration"),
        "{err}"
    );
    let queued = std::fs::read_dir(m.home.join("queue")).map_or(0, |d| d.count());
    assert_eq!(queued, 0);
}

/// Output into a pipe whose reader is gone (`repowire status | head -1` after head exited)
/// ends the command quietly, as for any Unix tool: no panic message, no exit status 101.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let m = Mesh::new();
    let home = m.dir.path().join("home");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    for args in [
        &["setup", "--agent", "claude", "--dry-run"][..],
        &["status"],
        &["config", "show"],
        &["gc"],
        &["peer", "list"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = m
            .cmd()
            .args(args)
            .env("HOME", &home)
            .stdout(writer)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            out.status.code() != Some(101),
            "{args:?}: {:?} {stderr}",
            out.status
        );
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}
