//! `repowire up`, `down` and `peer spawn`, descriptions and fan-out asks: the real binary with
//! stand-in agents, in the "user's own" tmux server of a private TMUX_TMPDIR (never the real
//! user's), with a HOME of its own that `repowire setup` has set up for Claude Code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::util::{self, Mesh, text};

/// A team's world: a spool, a HOME after `repowire setup --agent claude`, and a TMUX_TMPDIR
/// whose default tmux server is where `up` starts the agents.
struct World {
    mesh: Mesh,
    tmux_tmpdir: PathBuf,
    home: PathBuf,
}

impl World {
    fn new() -> World {
        let mut mesh = Mesh::new();
        let tmux_tmpdir = mesh.dir.path().join("tt");
        std::fs::create_dir_all(&tmux_tmpdir).unwrap();
        // tmux's default socket under TMUX_TMPDIR; Mesh::tmux and its Drop use it.
        let uid = unsafe { libc::getuid() };
        mesh.socket = tmux_tmpdir.join(format!("tmux-{uid}/default"));
        let home = mesh.dir.path().join("home");
        std::fs::create_dir_all(home.join(".claude")).unwrap();
        let w = World {
            mesh,
            tmux_tmpdir,
            home,
        };
        w.ok(&["setup", "--agent", "claude"]);
        w
    }

    /// repowire as a person at a terminal of this world (outside tmux).
    fn cmd(&self) -> Command {
        let mut c = self.mesh.cmd();
        c.env("HOME", &self.home)
            .env("TMUX_TMPDIR", &self.tmux_tmpdir)
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("CODEX_HOME");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "repowire {args:?} failed ({:?}): {}{}",
            out.status.code(),
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// A directory for a peer, with a README when `readme` is given.
    fn repo(&self, dir: &str, readme: Option<&str>) -> PathBuf {
        let d = self.mesh.dir.path().join(dir);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(r) = readme {
            std::fs::write(d.join("README.md"), r).unwrap();
        }
        d
    }

    /// The command line of a stand-in agent recording its input in `NAME.events`.
    fn standin(&self, name: &str) -> String {
        format!(
            "REPOWIRE_STANDIN_DIR={} exec {} standin --events {}",
            self.mesh.dir.path().join("transcripts").display(),
            util::bin().display(),
            self.events(name).display()
        )
    }

    fn events(&self, name: &str) -> PathBuf {
        self.mesh.dir.path().join(format!("{name}.events"))
    }

    fn prompts(&self, name: &str) -> Vec<String> {
        util::read_jsonl(&self.events(name))
            .into_iter()
            .filter(|e| e["type"] == "prompt")
            .map(|e| e["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn team_file(&self, text: &str) -> PathBuf {
        let f = self.mesh.dir.path().join("repowire.yaml");
        std::fs::write(&f, text).unwrap();
        f
    }

    fn peer(&self, name: &str) -> Value {
        self.mesh
            .peers()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no peer {name}: {:?}", self.mesh.peers()))
    }

    /// The windows of tmux session `session`, by name.
    fn windows(&self, session: &str) -> Vec<String> {
        let out = self
            .mesh
            .tmux(["list-windows", "-t", session, "-F", "#{window_name}"]);
        text(&out.stdout).lines().map(str::to_string).collect()
    }
}

/// `up` starts every peer of a team file, each under its name in its window, and they answer;
/// a second `up` starts nothing; `down` ends them, and a notification sent meanwhile is
/// delivered after the next `up`. Descriptions come from the file, from a README, and from
/// `peer describe`. A fan-out to the three returns three labelled answers; with one of them
/// offline, two answers and that peer's error.
#[test]
fn up_starts_a_team_that_answers_and_down_ends_it() {
    need_tmux!();
    let w = World::new();
    w.repo(
        "api",
        Some("# api\n\n[![ci](x.svg)](ci)\nThe **users** API, in Rust.\n"),
    );
    w.repo("web", None);
    w.repo("ops", None);
    let file = w.team_file(&format!(
        "tmux_session: dev\npeers:\n  alpha: {{ path: api, command: \"{}\" }}\n  beta: {{ path: web, command: \"{}\", description: \"the web front end\" }}\n  gamma: {{ path: ops, command: \"{}\" }}\n",
        w.standin("alpha"),
        w.standin("beta"),
        w.standin("gamma")
    ));
    let f = file.to_str().unwrap();
    let up = w.ok(&["up", "-f", f, "--timeout", "30s"]);
    for name in ["alpha", "beta", "gamma"] {
        assert!(
            up.lines()
                .any(|l| l.starts_with(name) && l.contains(&format!("started in dev:{name}"))),
            "{up}"
        );
        let p = w.peer(name);
        assert_eq!(p["status"], "online", "{p}");
    }
    assert!(up.contains("tmux attach -t dev"), "{up}");
    assert_eq!(w.windows("dev"), ["alpha", "beta", "gamma"]);
    assert_eq!(w.peer("alpha")["description"], "The users API, in Rust.");
    assert_eq!(w.peer("beta")["description"], "the web front end");
    assert_eq!(w.peer("gamma")["description"], Value::Null);
    let table = w.ok(&["peer", "list"]);
    assert!(
        table.lines().next().unwrap().ends_with("DESCRIPTION"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("beta") && l.ends_with("the web front end")),
        "{table}"
    );

    // Each answers as the peer it was named.
    let answer = w.ok(&["peer", "ask", "beta", "who are you?"]);
    assert!(
        answer.starts_with("ECHO: [repowire] Question from user"),
        "{answer}"
    );

    // Again: nothing new starts.
    let again = w.ok(&["up", "-f", f]);
    assert_eq!(
        again
            .lines()
            .filter(|l| l.contains("already running"))
            .count(),
        3,
        "{again}"
    );
    assert_eq!(w.windows("dev"), ["alpha", "beta", "gamma"]);

    // Descriptions set by hand, and back to the repository's own.
    let said = w.ok(&["peer", "describe", "gamma", "deploys and dashboards"]);
    assert_eq!(said, "gamma: deploys and dashboards\n");
    assert_eq!(w.peer("gamma")["description"], "deploys and dashboards");
    let said = w.ok(&["peer", "describe", "alpha", ""]);
    assert_eq!(
        said,
        "alpha: The users API, in Rust. (from its repository)\n"
    );
    let bad = w.run(&["peer", "describe", "alpha", "two\nlines"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("one line"),
        "{}",
        text(&bad.stderr)
    );

    // A fan-out to all three: three labelled answers.
    let out = w.run(&[
        "peer",
        "ask",
        "alpha",
        "beta",
        "gamma",
        "SLEEP 0.3\nstatus?",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for name in ["alpha", "beta", "gamma"] {
        let block = stdout
            .split(&format!("==> {name} <==\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no answer of {name}: {stdout}"));
        assert!(
            block.starts_with("ECHO: [repowire] Question from user"),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches("==> ").count(), 3, "{stdout}");

    // Down: every agent ends; a notification waits for the next up.
    let down = w.ok(&["down", "-f", f]);
    assert_eq!(
        down.lines().filter(|l| l.contains("stopped")).count(),
        3,
        "{down}"
    );
    for name in ["alpha", "beta", "gamma"] {
        assert_eq!(w.peer(name)["status"], "offline");
    }
    let ended: Vec<Value> = util::read_jsonl(&w.events("alpha"));
    assert!(
        ended.iter().any(|e| e["type"] == "exit"),
        "alpha's session did not end: {ended:?}"
    );
    let sent = w.ok(&[
        "peer",
        "notify",
        "alpha",
        "the schema changed while you were down",
    ]);
    assert!(sent.contains("when it comes back online"), "{sent}");
    let again = w.ok(&["down", "-f", f]);
    assert_eq!(
        again.lines().filter(|l| l.contains("not running")).count(),
        3,
        "{again}"
    );

    let up = w.ok(&["up", "-f", f, "--timeout", "30s"]);
    assert_eq!(
        up.lines().filter(|l| l.contains("started")).count(),
        3,
        "{up}"
    );
    let delivered = w.mesh.eventually(Duration::from_secs(10), || {
        w.prompts("alpha")
            .iter()
            .any(|p| p.contains("the schema changed while you were down"))
    });
    assert!(delivered, "{:?}", w.prompts("alpha"));
    // The names and the given descriptions came back with them.
    assert_eq!(w.peer("beta")["description"], "the web front end");
    assert_eq!(w.peer("gamma")["description"], "deploys and dashboards");

    // One of the three gone: two answers and its error, exit status 10.
    let gamma_pane = w.peer("gamma")["pane"].as_str().unwrap().to_string();
    w.mesh.tmux(["kill-pane", "-t", &gamma_pane]);
    assert!(
        w.mesh
            .eventually(Duration::from_secs(10), || w.peer("gamma")["status"]
                == "offline")
    );
    let out = w.run(&["peer", "ask", "alpha", "beta", "gamma", "status again?"]);
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.matches("==> ").count(), 2, "{stdout}");
    assert!(
        stdout.contains("==> alpha <==\n") && stdout.contains("==> beta <==\n"),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("2 of 3 peers answered")
            && stderr.contains("gamma: peer 'gamma' is offline"),
        "{stderr}"
    );

    // --all asks every peer not offline.
    let out = w.ok(&["peer", "ask", "--all", "and now?"]);
    assert_eq!(out.matches("==> ").count(), 2, "{out}");
    w.ok(&["down", "-f", f]);
}

/// What keeps a peer from starting is said, per peer, and the others still start.
#[test]
fn up_says_why_a_peer_did_not_start() {
    need_tmux!();
    let w = World::new();
    w.repo("ok", None);
    w.repo("other", None);
    let file = w.team_file(&format!(
        "peers:\n  good: {{ path: ok, command: \"{}\" }}\n  nopath: {{ path: missing }}\n  noagent: {{ path: ok, command: \"surely-no-such-agent --flag\" }}\n  nosetup: {{ path: ok, agent: gemini, command: \"{}\" }}\n  exits: {{ path: other, command: \"false\" }}\n  stuck: {{ path: other, command: \"sleep 30\" }}\n",
        w.standin("good"),
        w.standin("nosetup"),
    ));
    let out = w.run(&["up", "-f", file.to_str().unwrap(), "--timeout", "3s"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("nothing said of {name}: {stdout}"))
            .to_string()
    };
    assert!(
        line("good").contains("started in repowire:good"),
        "{stdout}"
    );
    assert!(line("nopath").contains("is not a directory"), "{stdout}");
    assert!(
        line("noagent").contains("surely-no-such-agent is not installed (not on PATH)"),
        "{stdout}"
    );
    assert!(
        line("nosetup").contains("run `repowire setup --agent gemini` first"),
        "{stdout}"
    );
    assert!(
        line("exits").contains("its agent exited before it registered"),
        "{stdout}"
    );
    assert!(
        line("stuck").contains("did not register within 3s"),
        "{stdout}"
    );
    assert!(
        text(&out.stderr).contains("5 of 6 peers not done"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.peer("good")["status"], "online");

    // A team file with a mistake names it and starts nothing.
    let bad = w.team_file("peers:\n  a: { path: ok, agnet: claude }\n");
    let out = w.run(&["up", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `agnet`"),
        "{}",
        text(&out.stderr)
    );
    // Without a file.
    let out = w
        .cmd()
        .arg("up")
        .current_dir(w.repo("empty", None))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no repowire.yaml here"),
        "{}",
        text(&out.stderr)
    );
    w.mesh.tmux(["kill-server"]);
}

/// `peer spawn` starts one peer without a team file, named as asked whatever its directory
/// is called, with the description given.
#[test]
fn peer_spawn_starts_one_peer_under_its_name() {
    need_tmux!();
    let w = World::new();
    let dir = w.repo("some-dir", Some("Ignored when a description is given.\n"));
    let out = w.ok(&[
        "peer",
        "spawn",
        "api",
        "--path",
        dir.to_str().unwrap(),
        "--command",
        &w.standin("api"),
        "--description",
        "orders API",
        "--tmux-session",
        "work",
    ]);
    assert!(out.contains("started in work:api"), "{out}");
    let p = w.peer("api");
    assert_eq!(p["status"], "online");
    assert_eq!(p["description"], "orders API");
    assert_eq!(
        Path::new(p["path"].as_str().unwrap()),
        dir.canonicalize().unwrap()
    );
    assert!(w.peer_names().iter().all(|n| n != "some-dir"));
    let answer = w.ok(&["peer", "ask", "api", "hello"]);
    assert!(answer.contains("Question from user"), "{answer}");
    // Spawned again while it runs: nothing new.
    let again = w.ok(&[
        "peer",
        "spawn",
        "api",
        "--path",
        dir.to_str().unwrap(),
        "--command",
        &w.standin("api"),
        "--tmux-session",
        "work",
    ]);
    assert!(again.contains("already running"), "{again}");
    assert_eq!(w.windows("work"), ["api"]);
    w.mesh.tmux(["kill-server"]);
}

impl World {
    fn peer_names(&self) -> Vec<String> {
        self.mesh
            .peers()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// A fan-out's every edge gets the deadlock check: a peer waiting on the asker is refused
/// for itself, and the others still answer.
#[test]
fn a_fan_out_refuses_only_the_edge_that_would_deadlock() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let _b = m.agent("beta", &[]);
    let _c = m.agent("gamma", &[]);
    // beta's session waits on alpha's answer (alpha's turn takes a while).
    let mut waiting = m.cmd_in(&m.pane("beta"));
    waiting.args(["peer", "ask", "alpha", "SLEEP 3\nslow one"]);
    let mut waiting = util::spawn_piped(&mut waiting);
    assert!(m.eventually(Duration::from_secs(10), || m.status("alpha") == "busy"));
    let out = m
        .cmd_in(&m.pane("alpha"))
        .args(["peer", "ask", "beta", "gamma", "nobody", "quick one"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(10), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("==> gamma <==\nECHO: [repowire] Question from alpha"),
        "{stdout}"
    );
    assert!(stderr.contains("1 of 3 peers answered"), "{stderr}");
    assert!(stderr.contains("beta: deadlock refused"), "{stderr}");
    assert!(stderr.contains("nobody: unknown peer 'nobody'"), "{stderr}");
    // When none answers, the exit status is that of the first peer's error.
    let out = m
        .cmd_in(&m.pane("alpha"))
        .args(["peer", "ask", "nobody", "beta", "again"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(waiting.wait().unwrap().success());
}

/// An agent that keeps running when its pane closes (Gemini CLI can) is sent SIGTERM by
/// `down`, and its session ends cleanly (its SessionEnd hook runs).
#[test]
fn down_ends_an_agent_that_outlives_its_pane() {
    need_tmux!();
    let w = World::new();
    w.repo("stubborn", None);
    let file = w.team_file(&format!(
        "peers:\n  stubborn: {{ path: stubborn, command: \"{} --outlive-pane\" }}\n",
        w.standin("stubborn")
    ));
    let f = file.to_str().unwrap();
    w.ok(&["up", "-f", f, "--timeout", "30s"]);
    let record: Value =
        serde_json::from_slice(&std::fs::read(w.mesh.home.join("peers/stubborn.json")).unwrap())
            .unwrap();
    let pid = record["agent_process"]["pid"]
        .as_u64()
        .expect("its agent process");
    let t = std::time::Instant::now();
    let down = w.ok(&["down", "-f", f]);
    assert!(down.contains("stubborn  stopped"), "{down}");
    // It was still there after the hangup, until SIGTERM.
    assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(!util::procs::alive(pid as u32), "it still runs");
    let events = util::read_jsonl(&w.events("stubborn"));
    assert!(events.iter().any(|e| e["type"] == "exit"), "{events:?}");
    assert_eq!(w.peer("stubborn")["status"], "offline");
}
