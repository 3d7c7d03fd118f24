//! Answers from a fork of a peer's session (`peer ask --fork`, `ask_peer(fork: true)`,
//! `when_busy`/`when_offline`), with stand-in peers and a fake `claude` on PATH that records
//! how it was run: the flows, the policy, waiting, timeouts and cancellation. The real Claude
//! Code's forks are tested in tests/claude.rs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

use serde_json::json;

use crate::util::claude_code::{
    Claude, ClaudeCode, PINNED, need_claude, repowire_hooks, repowire_mcp,
};
use crate::util::mcp::Mcp;
use crate::util::{self, Mesh, eventually, read_jsonl, text};

/// A fake `claude` in a directory of its own: it appends how it was run (argv, directory, the
/// variables a fork must and must not have) to `runs.jsonl`, sleeps for a `SLEEP n` line of
/// the prompt (its last argument), and prints Claude Code's JSON result.
struct FakeClaude {
    dir: PathBuf,
}

impl FakeClaude {
    fn new(m: &Mesh) -> FakeClaude {
        let dir = m.dir.path().join("fakebin");
        std::fs::create_dir_all(&dir).unwrap();
        let runs = dir.join("runs.jsonl");
        let script = format!(
            r#"#!/usr/bin/env python3
import json, os, re, sys, time
prompt = sys.argv[-1]
with open({runs:?}, "a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "pid": os.getpid(),
        "fork_env": os.environ.get("REPOWIRE_FORK"), "tmux": os.environ.get("TMUX"),
        "peer_only": os.environ.get("RW_PEER_ONLY"),
        "tmux_pane": os.environ.get("TMUX_PANE")}}) + "\n")
m = re.search(r"^SLEEP ([0-9.]+)$", prompt, re.M)
if m:
    time.sleep(float(m.group(1)))
if "FAIL" in prompt:
    print(json.dumps({{"type": "result", "is_error": True, "result": "No conversation found"}}))
    sys.exit(1)
sid = sys.argv[sys.argv.index("--resume") + 1]
print(json.dumps({{"type": "result", "is_error": False, "result": "fork of " + sid + ": " + prompt.splitlines()[-1]}}))
"#,
            runs = runs.display().to_string()
        );
        let bin = dir.join("claude");
        std::fs::write(&bin, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeClaude { dir }
    }

    fn runs(&self) -> Vec<Value> {
        read_jsonl(&self.dir.join("runs.jsonl"))
    }

    /// A stand-in peer `name` (asked once: see [`Mesh::warm_agent`]) whose environment has
    /// this `claude` on PATH (a fork runs in the peer's environment while it runs) and
    /// `RW_PEER_ONLY`, which the askers' has not.
    fn warm_agent(&self, m: &Mesh, name: &str) -> crate::util::Agent {
        let path = format!("PATH={}", util::path_with(&self.dir));
        let peer_only = format!("RW_PEER_ONLY=from {name}'s environment");
        let a = m.agent_with(name, &[], true, &[&path, &peer_only]);
        m.ok(["peer", "ask", name, "warm up"]);
        a
    }

    /// repowire as `cmd` runs it, with this `claude` first on PATH.
    fn on_path(&self, mut cmd: Command) -> Command {
        cmd.env("PATH", util::path_with(&self.dir));
        cmd
    }
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args);
    util::run_for(cmd, Duration::from_secs(60))
}

fn session_id(m: &Mesh, name: &str) -> String {
    m.peers()
        .into_iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["session_id"].as_str().map(str::to_string))
        .unwrap()
}

/// `--fork` answers from a fork of the peer's session at once while the peer is busy: nothing
/// is typed into its pane, the fork runs in its directory with the session id, read-only
/// flags, no tmux variables and REPOWIRE_FORK set; the history says `forked`; an offline
/// peer's last session answers too, and a failed fork is a failed question.
#[test]
fn fork_answers_a_busy_or_offline_peer_without_typing_into_it() {
    need_tmux!();
    let m = Mesh::new();
    let fake = FakeClaude::new(&m);
    let b = fake.warm_agent(&m, "beta");
    let sid = session_id(&m, "beta");
    // beta busy for a while.
    let mut long = m.cmd();
    long.args(["peer", "ask", "beta", "SLEEP 20\nlong turn"]);
    let mut long = util::spawn_piped(&mut long);
    assert!(m.eventually(Duration::from_secs(10), || m.status("beta") == "busy"));
    let typed_before = b.prompts().len();

    let t = Instant::now();
    let out = run(
        fake.on_path(m.cmd()),
        &["peer", "ask", "beta", "--fork", "what port?"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("fork of {sid}: what port?\n"));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        b.prompts().len(),
        typed_before,
        "something was typed into beta"
    );
    assert_eq!(m.status("beta"), "busy");

    let runs = fake.runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let r = &runs[0];
    let argv: Vec<&str> = r["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for flag in [
        "-p",
        "--fork-session",
        "--no-session-persistence",
        "--strict-mcp-config",
    ] {
        assert!(argv.contains(&flag), "{flag} missing: {argv:?}");
    }
    let after = |flag: &str| argv[argv.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--resume"), sid);
    assert_eq!(after("--permission-mode"), "plan");
    assert_eq!(after("--tools"), "Read,Grep,Glob");
    assert_eq!(after("--mcp-config"), r#"{"mcpServers":{}}"#);
    let prompt = argv.last().unwrap();
    assert!(
        prompt.starts_with("[repowire] Question from user (query "),
        "{prompt}"
    );
    assert!(prompt.contains("read-only fork"), "{prompt}");
    assert_eq!(
        Path::new(r["cwd"].as_str().unwrap()),
        b.work.canonicalize().unwrap()
    );
    assert_eq!(r["fork_env"], "1");
    assert_eq!((&r["tmux"], &r["tmux_pane"]), (&Value::Null, &Value::Null));
    // In the peer's environment, read from its agent process.
    assert_eq!(r["peer_only"], "from beta's environment");
    let id = m
        .history()
        .into_iter()
        .find(|e| e["text"] == "what port?")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let events: Vec<String> = m
        .history()
        .iter()
        .filter(|e| e["id"] == id.as_str())
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["sent", "forked", "answered"]);

    // Several at once.
    let mut many = Vec::new();
    for i in 0..3 {
        let mut c = fake.on_path(m.cmd());
        c.args(["peer", "ask", "beta", "--fork", &format!("SLEEP 1\nq{i}")]);
        many.push(util::spawn_piped(&mut c));
    }
    let t = Instant::now();
    for (i, c) in many.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert_eq!(text(&out.stdout), format!("fork of {sid}: q{i}\n"));
    }
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "they ran one after another: {:?}",
        t.elapsed()
    );

    // A fork that fails is a failed question (exit 7) with its reason.
    let out = run(
        fake.on_path(m.cmd()),
        &["peer", "ask", "beta", "--fork", "FAIL please"],
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("No conversation found"),
        "{}",
        text(&out.stderr)
    );

    // Offline: refused without --fork, answered from its last session with it.
    assert!(long.wait().unwrap().success());
    m.tmux(["kill-session", "-t", "beta"]);
    assert!(m.eventually(Duration::from_secs(10), || m.status("beta") == "offline"));
    let out = run(fake.on_path(m.cmd()), &["peer", "ask", "beta", "plain"]);
    assert_eq!(out.status.code(), Some(4));
    let out = run(
        fake.on_path(m.cmd()),
        &["peer", "ask", "beta", "--fork", "still there?"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("fork of {sid}: still there?\n"));
    // Its agent is gone: the fork ran in the asker's environment.
    assert_eq!(fake.runs().last().unwrap()["peer_only"], Value::Null);
}

/// `when_busy: fork` and `when_offline: fork` send plain asks to a fork in those states only;
/// `config show` lists both.
#[test]
fn the_policy_forks_asks_to_busy_and_offline_peers() {
    need_tmux!();
    let m = Mesh::new();
    let fake = FakeClaude::new(&m);
    std::fs::create_dir_all(&m.home).unwrap();
    std::fs::write(
        m.home.join("config.yaml"),
        "when_busy: fork\nwhen_offline: fork\n",
    )
    .unwrap();
    let shown = m.ok(["config", "show"]);
    assert!(
        shown.contains("\nwhen_busy: fork  # default: wait\n"),
        "{shown}"
    );
    assert!(
        shown.contains("\nwhen_offline: fork  # default: wait\n"),
        "{shown}"
    );
    let b = fake.warm_agent(&m, "beta");
    // Idle: typed into its pane as always.
    let answer = text(&run(fake.on_path(m.cmd()), &["peer", "ask", "beta", "idle one"]).stdout);
    assert!(answer.starts_with("ECHO: [repowire]"), "{answer}");
    assert!(fake.runs().is_empty());
    // Busy: a fork answers.
    let mut long = m.cmd();
    long.args(["peer", "ask", "beta", "SLEEP 10\nlong turn"]);
    let mut long = util::spawn_piped(&mut long);
    assert!(m.eventually(Duration::from_secs(10), || m.status("beta") == "busy"));
    let answer = text(&run(fake.on_path(m.cmd()), &["peer", "ask", "beta", "busy one"]).stdout);
    assert!(answer.starts_with("fork of "), "{answer}");
    assert!(!b.prompts().iter().any(|p| p.contains("busy one")));
    assert!(long.wait().unwrap().success());
    // Offline: a fork of its last session answers.
    m.tmux(["kill-session", "-t", "beta"]);
    assert!(m.eventually(Duration::from_secs(10), || m.status("beta") == "offline"));
    let answer = text(&run(fake.on_path(m.cmd()), &["peer", "ask", "beta", "gone one"]).stdout);
    assert!(answer.starts_with("fork of "), "{answer}");
    assert_eq!(fake.runs().len(), 2);
}

/// A fork that takes too long is ended at the timeout; `--no-wait` prints the id and `peer
/// wait` fetches the answer; a cancelled `ask_peer(fork: true)` ends its fork, whose progress
/// said it was answering in a fork.
#[test]
fn forks_time_out_wait_and_cancel_like_any_ask() {
    need_tmux!();
    let m = Mesh::new();
    let fake = FakeClaude::new(&m);
    let _b = fake.warm_agent(&m, "beta");
    let alive = |pid: u64| crate::util::procs::alive(pid as u32);

    let out = run(
        fake.on_path(m.cmd()),
        &[
            "peer",
            "ask",
            "beta",
            "--fork",
            "--timeout",
            "2s",
            "SLEEP 30\nslow",
        ],
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("has been ended"),
        "{}",
        text(&out.stderr)
    );
    let pid = fake.runs()[0]["pid"].as_u64().unwrap();
    assert!(
        m.eventually(Duration::from_secs(5), || !alive(pid)),
        "the fork still runs"
    );

    let out = run(
        fake.on_path(m.cmd()),
        &["peer", "ask", "beta", "--fork", "--no-wait", "later"],
    );
    let id = text(&out.stdout).trim().to_string();
    let answer = text(&run(fake.on_path(m.cmd()), &["peer", "wait", &id]).stdout);
    assert!(answer.ends_with(": later\n"), "{answer}");

    let mut mcp = Mcp::start(&m, fake.on_path(m.cmd()));
    let id = mcp.call_start("ask_peer", json_args("beta", "SLEEP 30\nforever"));
    mcp.wait_progress(id, "answering in a fork of beta's session");
    assert!(m.eventually(Duration::from_secs(10), || fake.runs().len() == 3));
    let pid = fake.runs()[2]["pid"].as_u64().unwrap();
    assert!(alive(pid));
    mcp.cancel(id);
    assert!(
        m.eventually(Duration::from_secs(5), || !alive(pid)),
        "the cancelled fork still runs"
    );
}

fn json_args(peer: &str, query: &str) -> Value {
    serde_json::json!({"peer_name": peer, "query": query, "fork": true})
}

/// What cannot fork is refused with the reason: a Gemini CLI peer, a peer on another host.
#[test]
fn fork_is_refused_where_it_cannot_work() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let record = m.home.join("peers/beta.json");
    let mut p: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    p["agent"] = "gemini".into();
    std::fs::write(&record, serde_json::to_vec(&p).unwrap()).unwrap();
    let out = m.run(["peer", "ask", "beta", "--fork", "q"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Gemini CLI cannot answer by fork"),
        "{stderr}"
    );
    let err = m.fails(["peer", "ask", "beta@elsewhere", "--fork", "q"], 2);
    assert!(
        err.contains("another host cannot be asked by fork"),
        "{}",
        err
    );
}

/// repowire as a person at a terminal of `cc`'s world, able to run its Claude Code: the
/// environment a fork of one of its sessions needs (its HOME, the fake API, `claude` on PATH).
fn claude_asker(cc: &Claude, path: &str) -> Command {
    let mut c = util::rw(&cc.spool);
    c.env("HOME", &cc.home.dir)
        .env("PATH", path)
        .env("ANTHROPIC_BASE_URL", cc.model.url())
        .env("ANTHROPIC_AUTH_TOKEN", "fake")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("CLAUDE_CONFIG_DIR");
    c
}

/// The session files in the project directory of Claude Code sessions working in `work`.
fn session_files(cc: &Claude, work: &Path) -> Vec<PathBuf> {
    let dir = crate::util::claude_code::project_dir(&cc.home.dir, work);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    files
}

/// The fake API's requests whose text holds `marker`.
fn requests_with(cc: &Claude, marker: &str) -> Vec<String> {
    read_jsonl(&cc.model.log)
        .into_iter()
        .map(|e| e["body"].to_string())
        .filter(|b| b.contains(marker))
        .collect()
}

/// Against the real Claude Code: beta is in the middle of a long turn (`SLEEP 60`); a
/// `--fork` ask answers within seconds, and the fork's request to the model carried a fact
/// from beta's earlier conversation, while nothing was typed into beta and its turn goes on.
/// `ask_peer` with `fork: true` from alpha does the same. Forks told to write a file or run a
/// command do neither; no fork leaves a session file or a peer. When beta's session has
/// ended, a fork of it still answers.
#[test]
fn claude_code_forks_answer_a_busy_and_an_offline_peer_and_change_nothing() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    forks_answer_and_change_nothing(&claude);
}

pub(crate) fn forks_answer_and_change_nothing(claude: &ClaudeCode) {
    let path = util::path_with(claude.bin.parent().unwrap());
    let mut cc = Claude::prepare(
        claude,
        json!({"hooks": repowire_hooks(), "permissions": {"allow": ["mcp__repowire"]}}),
        json!({"repowire": repowire_mcp()}),
    );
    cc.env = vec![format!("PATH={path}")];
    cc.launch();
    let beta_work = cc.root.join("beta");
    let fact = "The deploy key rotates every 37 hours.";
    assert_eq!(cc.turn("beta", &format!("{fact}\nREPLY noted")), "noted");
    crate::util::claude_code::send(&cc.tmux, "beta", "SLEEP 60\nREPLY the long turn is over");
    assert!(eventually(
        Duration::from_secs(20),
        || cc.peer("beta")["status"] == "busy"
    ));
    assert!(eventually(Duration::from_secs(10), || cc
        .typed_prompts("beta")
        .len()
        == 2));
    let typed = cc.typed_prompts("beta").len();
    let sessions = session_files(&cc, &beta_work);

    let t = Instant::now();
    let out = util::run_for(
        {
            let mut c = claude_asker(&cc, &path);
            c.args([
                "peer",
                "ask",
                "beta",
                "--fork",
                "REPLY it rotates every 37 hours",
            ]);
            c
        },
        Duration::from_secs(90),
    );
    let took = t.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it rotates every 37 hours\n");
    eprintln!("claude: a fork of busy beta answered in {took:.2?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Its request to the model (2.0.x sends a side request with the prompt too).
    let asked = requests_with(&cc, "read-only fork");
    assert!(
        asked.iter().any(|r| r.contains(fact)),
        "none of the fork's {} requests carried beta's conversation",
        asked.len()
    );
    assert_eq!(cc.peer("beta")["status"], "busy");
    assert_eq!(
        cc.typed_prompts("beta").len(),
        typed,
        "something was typed into beta"
    );

    // The MCP tool, from alpha's session.
    let call = format!(
        "CALL_TOOL mcp__repowire__ask_peer {}",
        json!({"peer_name": "beta", "query": "REPLY through the tool, forked", "fork": true})
    );
    let t = Instant::now();
    assert_eq!(
        cc.turn("alpha", &call),
        "TOOL_RESULT: through the tool, forked"
    );
    eprintln!(
        "claude: alpha's turn asking a fork of beta took {:.2?}",
        t.elapsed()
    );
    assert_eq!(cc.peer("beta")["status"], "busy");

    // Forks told to change something cannot.
    let written = beta_work.join("written-by-a-fork.txt");
    let ran = beta_work.join("made-by-a-fork-command.txt");
    for tool in [
        format!(
            "CALL_TOOL Write {}",
            json!({"file_path": written, "content": "pwned"})
        ),
        format!(
            "CALL_TOOL Bash {}",
            json!({"command": format!("touch {}", ran.display()), "description": "touch"})
        ),
        format!(
            "CALL_TOOL Edit {}",
            json!({"file_path": beta_work.join("x"), "old_string": "a", "new_string": "b"})
        ),
    ] {
        let mut c = claude_asker(&cc, &path);
        c.args(["peer", "ask", "beta", "--fork", &tool]);
        let out = util::run_for(c, Duration::from_secs(90));
        eprintln!(
            "claude: fork told {tool}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    assert!(
        !written.exists() && !ran.exists(),
        "a fork changed something"
    );
    assert_eq!(
        session_files(&cc, &beta_work),
        sessions,
        "a fork left a session file"
    );
    let names: Vec<String> = cc
        .peers()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(cc.typed_prompts("beta").len(), typed);

    // Offline: its last session answers.
    cc.tmux.run(["kill-session", "-t", "beta"]);
    assert!(eventually(
        Duration::from_secs(20),
        || cc.peer("beta")["status"] == "offline"
    ));
    let mut c = claude_asker(&cc, &path);
    c.args(["peer", "ask", "beta", "--fork", "REPLY still knows it"]);
    let out = util::run_for(c, Duration::from_secs(90));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "still knows it\n");
    assert!(
        requests_with(&cc, "REPLY still knows it")
            .iter()
            .any(|r| r.contains(fact))
    );
    // Its hooks ran as for any session, and repowire's did nothing: beta stays offline, no
    // peer came of it.
    assert_eq!(cc.peer("beta")["status"], "offline");
    assert_eq!(cc.peers().len(), 2);
}

/// A session outside tmux of a Claude Code release without an inbox (the oldest tested: its
/// hooks get none) registers as a peer that answers by fork only: listed so, asked (without
/// --fork) through a fork, a notification to it refused with why.
#[test]
fn claude_code_without_an_inbox_outside_tmux_is_a_peer_that_answers_by_fork() {
    let oldest = repowire::agents::Agent::named("claude").unwrap().tested().0;
    let Some(claude) = need_claude(oldest) else {
        return;
    };
    let path = util::path_with(claude.bin.parent().unwrap());
    let cc = Claude::prepare(&claude, json!({"hooks": repowire_hooks()}), json!({}));
    // Run in a terminal (a tmux pane) but with no sign of tmux in its environment.
    let alpha = cc.claude.launch(
        &cc.tmux,
        &cc.home,
        &cc.model,
        &cc.spool,
        ("alpha", &cc.root.join("alpha")),
        &[format!("PATH={path}"), "TMUX=".into(), "TMUX_PANE=".into()],
    );
    assert!(
        eventually(Duration::from_secs(20), || cc
            .peers()
            .iter()
            .any(|p| p["name"] == "alpha" && p["status"] == "online")),
        "{:?}",
        cc.peers()
    );
    let p = cc.peer("alpha");
    assert_eq!(
        (&p["fork_only"], &p["pane"]),
        (&json!(true), &json!("")),
        "{p}"
    );
    // Its person works in it (a session with no conversation yet has nothing to fork).
    crate::util::claude_code::send(&cc.tmux, "alpha", "The build uses zig 0.14.\nREPLY noted");
    assert!(eventually(Duration::from_secs(30), || {
        read_jsonl(&alpha.transcript)
            .iter()
            .any(|l| l["type"] == "assistant" && l.to_string().contains("noted"))
    }));
    let table = text(&cc.person.rw(&["peer", "list"]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("alpha") && l.contains(" -  ")),
        "{table}"
    );
    let out = cc.person.rw(&["peer", "notify", "alpha", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("runs outside tmux"),
        "{}",
        text(&out.stderr)
    );
    let mut c = claude_asker(&cc, &path);
    c.args(["peer", "ask", "alpha", "REPLY from outside tmux"]);
    let out = util::run_for(c, Duration::from_secs(90));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from outside tmux\n");
    let id = cc
        .history()
        .into_iter()
        .find(|e| e["text"] == "REPLY from outside tmux")
        .unwrap()["id"]
        .clone();
    let events: Vec<Value> = cc
        .history()
        .into_iter()
        .filter(|e| e["id"] == id)
        .map(|e| e["event"].clone())
        .collect();
    assert_eq!(events, [json!("sent"), json!("forked"), json!("answered")]);
}
