//! The fork rows: `peer ask --fork` to an offline Claude Code peer, end to end, with the real
//! Claude Code (the newest tested release, installed with `.ci/install-agent` where the
//! tests have not already) against the project's fake model API, for a session of one turn
//! and for transcripts of 1 MB and 50 MB.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use repowire::agents::Agent;
use repowire::peer::{self, Peer, Turn};
use repowire::spool::Spool;
use repowire::time::now_ms;
use serde_json::json;

use super::{Bench, Samples, bin};

/// The release of Claude Code to time, and where its `claude` is.
fn claude() -> Option<(String, PathBuf)> {
    let version = Agent::default().tested().1.to_string();
    let agents = bin().parent()?.parent()?.join("agents");
    let dir = agents.join(format!("claude-{version}"));
    let claude = dir.join("node_modules/.bin/claude");
    if !claude.exists() {
        let installed =
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-agent"))
                .args(["claude", &version])
                .arg(&dir)
                .stdin(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            eprintln!("fork rows skipped: Claude Code {version} could not be installed");
            return None;
        }
    }
    Some((version, claude))
}

/// A transcript of about `size` bytes: turns of a person's question and an answer.
fn transcript(path: &Path, session: &str, cwd: &Path, size: u64) {
    use std::io::Write;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (mut written, mut parent, mut i) = (0u64, serde_json::Value::Null, 0u64);
    let filler = "the orders table is sharded by customer id; ".repeat(20);
    while written < size.max(1) {
        for role in ["user", "assistant"] {
            let uuid = format!("00000000-0000-4000-8000-{i:012}");
            i += 1;
            let message = if role == "user" {
                json!({"role": "user", "content": format!("question {i}: {filler}")})
            } else {
                json!({"id": format!("msg_{i}"), "type": "message", "role": "assistant",
                       "model": "claude-sonnet-4-5", "content": [{"type": "text", "text": format!("answer {i}: {filler}")}],
                       "stop_reason": "end_turn", "stop_sequence": null,
                       "usage": {"input_tokens": 10, "output_tokens": 10}})
            };
            let line = json!({"parentUuid": parent, "isSidechain": false, "userType": "external",
                "cwd": cwd, "sessionId": session, "version": "2.1.0", "gitBranch": "",
                "type": role, "message": message, "uuid": uuid,
                "timestamp": "2026-12-01T10:00:00.000Z"})
            .to_string();
            writeln!(f, "{line}").unwrap();
            written += line.len() as u64 + 1;
            parent = json!(uuid);
        }
    }
}

pub fn fork_figures(b: &mut Bench) {
    let Some((version, claude)) = claude() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (home, work, spool_dir) = (
        dir.path().join("home"),
        dir.path().join("work"),
        dir.path().join("spool"),
    );
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let work = work.canonicalize().unwrap();
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true, "lastOnboardingVersion": version,
               "projects": {work.display().to_string(): {"hasTrustDialogAccepted": true}}})
        .to_string(),
    )
    .unwrap();
    let port_file = dir.path().join("port");
    let mut model = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_model.py"))
        .arg("--port-file")
        .arg(&port_file)
        .arg("--log")
        .arg(dir.path().join("api.jsonl"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let port = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .filter(|p| !p.is_empty())
        {
            break p;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the fake model did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let spool = Spool::open(&spool_dir).unwrap();
    let path = super::util::path_with(claude.parent().unwrap());
    for (label, size, n) in [
        ("a session of one turn", 1, 10),
        ("a 1 MB transcript", 1 << 20, 10),
        ("a 50 MB transcript", 50 << 20, 5),
    ] {
        let name = format!("p{size}");
        let session = format!("11111111-2222-4333-8444-{size:012}");
        transcript(
            &super::claude_code::project_dir(&home, &work).join(format!("{session}.jsonl")),
            &session,
            &work,
            size,
        );
        let now = now_ms();
        peer::save(
            &spool,
            &Peer {
                name: name.clone(),
                agent: Agent::default(),
                tmux_socket: dir.path().join("no-tmux"),
                pane: "%999".into(),
                path: work.clone(),
                session_id: Some(session),
                agent_command: None,
                agent_process: None,
                pinned: true,
                description: None,
                described: false,
                online: false,
                registered_ms: now,
                started_ms: now,
                last_activity_ms: now,
                turn: Turn::default(),
                queued_turns: vec![],
                transport: None,
                no_inbox: None,
                transcript: None,
            },
        )
        .unwrap();
        let mut times = Vec::new();
        for i in 0..b.n(n).max(2) {
            let t = Instant::now();
            let out = Command::new(bin())
                .args([
                    "peer",
                    "ask",
                    &name,
                    "--fork",
                    &format!("REPLY fork answer {i}"),
                ])
                .env("REPOWIRE_HOME", &spool_dir)
                .env("HOME", &home)
                .env("PATH", &path)
                .env("ANTHROPIC_BASE_URL", format!("http://127.0.0.1:{port}"))
                .env("ANTHROPIC_AUTH_TOKEN", "fake")
                .env("DISABLE_TELEMETRY", "1")
                .env("DISABLE_AUTOUPDATER", "1")
                .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
                .env_remove("TMUX")
                .env_remove("TMUX_PANE")
                .env_remove("CLAUDE_CONFIG_DIR")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("fork answer {i}\n"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            times.push(ms);
        }
        let s = Samples(times);
        b.row(
            &format!("`peer ask --fork`, {label}, Claude Code {version} on the fake API"),
            "stated",
            format!("{:.0} ms median", s.median()),
            s.spread("ms"),
        );
    }
    let _ = model.kill();
    let _ = model.wait();
}
