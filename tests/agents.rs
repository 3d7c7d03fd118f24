//! End to end against the real Codex CLI, Gemini CLI, OpenCode and Pi, next to a real Claude
//! Code session, all five in one private tmux server, talking to the project's fake model API
//! on 127.0.0.1 (`tests/fake_model.py`: Anthropic Messages for Claude Code and Pi, OpenAI
//! Responses for Codex and OpenCode, Gemini's API for Gemini CLI). The fake follows the script in the last prompt (`REPLY
//! <text>`, `CALL_TOOL <name> <json>`, `SLEEP <s>`, else `ECHO: <prompt>`), so every answer
//! below is exactly what the agent's turn made of what repowire typed.
//!
//! The CLIs are installed from the npm registry by `.ci/install-agent` when missing (see
//! `util::install_agent`). A test prints `SKIPPED: <reason>` only when it cannot run here: no
//! tmux, python3 or npm, or npm install failed; on CI all of that is there.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::agents::{
    ASK_TIMEOUT, CODEX_PINNED, GEMINI_PINNED, NAMES, OPENCODE_PINNED, PI_PINNED, Team, ask_tool,
    ci_variables, need_agents, shell_call,
};
use crate::util::claude_code;
use crate::util::{
    self, HOSTILE_QUESTION, HOSTILE_QUESTION_RECEIVED, Tmux, eventually, need_agent, run_for,
    rw_command, sh_quote, text,
};

/// The five sessions, each asked from the command line, each asking another through its
/// repowire tool and through `repowire peer ask` in its own shell tool, each getting a
/// notification; then Codex, Gemini, OpenCode and Pi turns cut short with Esc are reported as
/// interrupted, a person's draft holds a typed question back until its own turn is over (and
/// one posted to an inbox leaves it be), and quitting takes them offline.
#[test]
fn claude_codex_gemini_opencode_and_pi_ask_each_other() {
    let Some(clis) = need_agents(
        claude_code::PINNED,
        CODEX_PINNED,
        GEMINI_PINNED,
        OPENCODE_PINNED,
        PI_PINNED,
    ) else {
        return;
    };
    let team = Team::start(&clis);
    core_flows(&team);

    // 5. Hostile text reaches Codex, Gemini, OpenCode and Pi inert and whole.
    let question = HOSTILE_QUESTION;
    for name in ["codex", "gemini", "opencode", "pi"] {
        let (answer, _) = team.ask(name, question);
        let id = team.last_sent("user", name);
        let header = format!("ECHO: [repowire] Question from user (query {id})");
        assert!(answer.starts_with(&header), "{answer}");
        assert!(
            answer.ends_with(&format!("\n{HOSTILE_QUESTION_RECEIVED}")),
            "{name} saw something else: {answer:?}"
        );
        assert!(
            !team.root.join(name).join("pwned").exists(),
            "a '!' line ran a command in {name}"
        );
        team.assert_online(name);
    }

    // 6. Through `repowire peer ask` run by each agent's own shell tool.
    let rw = rw_command();
    for (asker, target) in [
        ("codex", "claude"),
        ("gemini", "codex"),
        ("opencode", "gemini"),
        ("pi", "opencode"),
        ("claude", "pi"),
    ] {
        let reply = format!("{target} answers {asker}'s shell");
        let command = format!(
            "{rw} peer ask {target} {} --timeout 90s",
            sh_quote(&format!("REPLY {reply}"))
        );
        let call = shell_call(asker, &command);
        team.relay(asker, target, &call, &reply, "runs `peer ask`");
    }

    // 7. A person's draft in the prompt box is never typed after: the question waits until
    //    the draft's own turn has ended. OpenCode, past its first turn, and Pi are posted to
    //    through their plugin's inbox: the question is answered and the draft stays.
    for name in ["opencode", "pi"] {
        let draft = format!("REPLY the person's own prompt to {name}");
        team.tmux.paste(name, &draft);
        assert!(eventually(Duration::from_secs(20), || {
            team.tmux.screen(name, false).contains(&draft)
        }));
        assert_eq!(team.peer(name)["transport"], "inbox");
        let (answer, _) = team.ask(name, "REPLY around the draft");
        assert_eq!(answer, "around the draft");
        let screen = team.tmux.screen(name, false);
        assert!(screen.contains(&draft), "{screen}");
        team.tmux.keys(name, &["Enter"]);
        // The model answered the draft's own turn.
        assert!(eventually(Duration::from_secs(60), || {
            util::read_jsonl(&team.model.log).iter().any(|r| {
                r["reply"]
                    .to_string()
                    .contains(&format!("the person's own prompt to {name}"))
            })
        }));
        team.assert_online(name);
    }
    for name in ["codex", "gemini"] {
        team.tmux.paste(name, "REPLY the person's own prompt");
        let drafted = eventually(Duration::from_secs(20), || {
            team.tmux
                .screen(name, false)
                .contains("REPLY the person's own prompt")
        });
        assert!(drafted, "{name} does not show the draft");
        let id = team
            .rw_ok(&["peer", "ask", name, "REPLY after the draft", "--no-wait"])
            .trim()
            .to_string();
        // The deliverer the ask started looked at the box and left.
        util::helpers_done(&team.spool);
        assert_eq!(
            team.event_names(&id),
            ["sent"],
            "{name} typed after a draft"
        );
        team.tmux.keys(name, &["Enter"]);
        let out = team.rw_ok(&["peer", "wait", &id, "--timeout", "120s"]);
        assert_eq!(out, "after the draft\n");
        team.assert_online(name);
    }

    // 8. Quitting ends the session: the peer goes offline (OpenCode tells no plugin that it
    //    exits: its process is gone).
    for name in ["codex", "gemini", "opencode", "pi"] {
        let quit = if name == "opencode" { "/exit" } else { "/quit" };
        team.tmux.paste(name, quit);
        // Input pacing, as a person types: Enter right after a paste is part of it.
        std::thread::sleep(Duration::from_millis(500));
        team.tmux.keys(name, &["Enter"]);
        let offline = eventually(Duration::from_secs(60), || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "offline")
        });
        assert!(offline, "{name} is not offline after /quit");
    }
}

/// What every tested release must do (tests/versions.rs runs it on other releases): each
/// agent registers as itself and answers a person's question, asks the next round the ring
/// through the MCP tool, takes a notification, and reports a turn cut short with Esc.
pub(crate) fn core_flows(team: &Team) {
    let peers = team.peers();
    for name in NAMES {
        let p = peers.iter().find(|p| p["name"] == name).unwrap();
        assert_eq!(p["agent"], name, "{p}");
    }
    let listing = team.rw_ok(&["peer", "list"]);
    assert!(listing.contains("AGENT"), "{listing}");

    // 1. A person asks each, from the command line.
    for name in ["codex", "gemini", "opencode", "pi", "claude"] {
        let t = Instant::now();
        let (answer, _) = team.ask(name, &format!("What is 6*7?\nREPLY forty-two, says {name}"));
        eprintln!("agents: user asks {name}: {:.2?}", t.elapsed());
        assert_eq!(answer, format!("forty-two, says {name}"));
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "answered"]);
        team.assert_online(name);
    }

    // 2. Through the MCP tool (Pi: repowire's extension's tool of the same name), round the
    //    ring: claude → codex → gemini → opencode → pi → claude.
    for (asker, target) in [
        ("claude", "codex"),
        ("codex", "gemini"),
        ("gemini", "opencode"),
        ("opencode", "pi"),
        ("pi", "claude"),
    ] {
        let reply = format!("{target} answers {asker} through MCP");
        let args = json!({"peer_name": target, "query": format!("REPLY {reply}")});
        let call = format!("CALL_TOOL {} {args}", ask_tool(asker));
        team.relay(asker, target, &call, &reply, "asks through MCP");
    }

    // 3. A notification reaches each, as a turn of its own.
    for name in NAMES {
        let note = format!("Heads up, {name}: the API moves to /v2 on Friday.");
        let out = team.rw_ok(&["peer", "notify", name, &note]);
        let id = out.split_whitespace().nth(1).unwrap().to_string();
        let received = eventually(ASK_TIMEOUT, || {
            team.event_names(&id) == ["sent", "delivered", "received"]
        });
        assert!(received, "{name}: {:?}", team.event_names(&id));
        team.assert_online(name);
    }
    // Their models saw them (Claude Code's is checked in tests/claude.rs).
    let api = std::fs::read_to_string(&team.model.log).unwrap();
    for name in ["codex", "gemini", "opencode", "pi"] {
        assert!(
            api.contains(&format!("Heads up, {name}: the API moves")),
            "{name}'s notification never reached its model"
        );
    }

    // 4. A turn cut short with Esc is no answer: the asker hears it was interrupted.
    for name in ["codex", "gemini", "opencode", "pi"] {
        let mut c = util::rw(&team.spool);
        c.args([
            "peer",
            "ask",
            name,
            "SLEEP 30\nREPLY too late",
            "--timeout",
            "100s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let asker = c.spawn().unwrap();
        let busy = eventually(ASK_TIMEOUT, || {
            team.peers()
                .iter()
                .any(|p| p["name"] == name && p["status"] == "busy")
        });
        assert!(busy, "{name} never got busy");
        std::thread::sleep(Duration::from_millis(500));
        team.tmux.keys(name, &["Escape"]);
        if name == "opencode" {
            // Its first Esc says "esc again to interrupt" (input pacing, as a person presses).
            std::thread::sleep(Duration::from_millis(300));
            team.tmux.keys(name, &["Escape"]);
        }
        let out = asker.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(7), "{name}: {err}");
        assert!(err.contains("interrupted"), "{name}: {err}");
        let id = team.last_sent("user", name);
        assert_eq!(team.event_names(&id), ["sent", "delivered", "failed"]);
        team.assert_online(name);
    }
}

/// `repowire up` starts a Codex, a Gemini CLI, an OpenCode and a Pi session from a team file (each
/// named by the file, not by its directory), each answers, and `repowire down` ends their
/// processes.
#[test]
fn codex_gemini_opencode_and_pi_come_up_from_a_team_file_and_go_down() {
    let (Some(codex), Some(gemini), Some(opencode), Some(pi)) = (
        need_agent("codex", CODEX_PINNED),
        need_agent("gemini", GEMINI_PINNED),
        need_agent("opencode", OPENCODE_PINNED),
        need_agent("pi", PI_PINNED),
    ) else {
        return;
    };
    let team = Team::prepare();
    let tmux_tmpdir = team.root.join("tt");
    std::fs::create_dir_all(&tmux_tmpdir).unwrap();
    struct Server(PathBuf);
    impl Drop for Server {
        fn drop(&mut self) {
            let uid = unsafe { libc::getuid() };
            let tmux = Tmux {
                socket: self.0.join(format!("tmux-{uid}/default")),
            };
            tmux.shut_down(Duration::from_secs(20));
        }
    }
    let _server = Server(tmux_tmpdir.clone());
    let (cx, gm) = (team.root.join("cx"), team.root.join("gm"));
    let unset: String = ci_variables()
        .iter()
        .map(|k| format!("unset {k}; "))
        .collect();
    let file = team.root.join("repowire.yaml");
    std::fs::write(
        &file,
        format!(
            "tmux_session: team\npeers:\n  web: {{ path: codex, agent: codex, command: \"HOME={} CODEX_HOME={} FAKE_API_KEY=fake exec {} --dangerously-bypass-hook-trust\" }}\n  ops: {{ path: gemini, agent: gemini, command: \"{unset}HOME={} GEMINI_API_KEY=fake GOOGLE_GEMINI_BASE_URL={} exec {} --approval-mode=yolo\" }}\n  app: {{ path: opencode, agent: opencode, command: \"unset XDG_CONFIG_HOME; {} exec {}\" }}\n  dev: {{ path: pi, agent: pi, command: \"{} exec {}\" }}\n",
            cx.display(),
            cx.join(".codex").display(),
            codex.display(),
            gm.display(),
            team.model.url(),
            gemini.display(),
            team.opencode_env().join(" "),
            opencode.display(),
            team.pi_env().join(" "),
            pi.display(),
        ),
    )
    .unwrap();
    let rw = |args: &[&str]| {
        let mut c = util::rw(&team.spool);
        c.args(args)
            // Where `up` looks for each agent's setup: Gemini CLI's in HOME, Codex's in
            // CODEX_HOME, OpenCode's in XDG_CONFIG_HOME, Pi's in PI_CODING_AGENT_DIR.
            .env("HOME", &gm)
            .env("CODEX_HOME", cx.join(".codex"))
            .env("XDG_CONFIG_HOME", team.root.join("oc/.config"))
            .env("PI_CODING_AGENT_DIR", team.root.join("pih/.pi/agent"))
            .env("TMUX_TMPDIR", &tmux_tmpdir);
        run_for(c, Duration::from_secs(150))
    };
    let t = Instant::now();
    let up = rw(&["up", "-f", file.to_str().unwrap(), "--timeout", "120s"]);
    let said = text(&up.stdout);
    assert!(up.status.success(), "{said}{}", text(&up.stderr));
    eprintln!(
        "agents: `repowire up` of Codex, Gemini CLI, OpenCode and Pi took {:.2?}:\n{said}",
        t.elapsed()
    );
    for (name, agent) in [
        ("web", "codex"),
        ("ops", "gemini"),
        ("app", "opencode"),
        ("dev", "pi"),
    ] {
        let p = team.peer(name);
        assert_eq!(
            (&p["status"], &p["agent"]),
            (&json!("online"), &json!(agent)),
            "{p}"
        );
    }
    assert!(
        !team
            .peers()
            .iter()
            .any(|p| NAMES[1..].contains(&p["name"].as_str().unwrap_or_default()))
    );
    let (answer, took) = team.ask("web", "REPLY codex, up from a team file");
    eprintln!("agents: ask to web (Codex) {took:.2?}");
    assert_eq!(answer, "codex, up from a team file");
    let (answer, took) = team.ask("ops", "REPLY gemini, up from a team file");
    eprintln!("agents: ask to ops (Gemini CLI) {took:.2?}");
    assert_eq!(answer, "gemini, up from a team file");
    let (answer, took) = team.ask("app", "REPLY opencode, up from a team file");
    eprintln!("agents: ask to app (OpenCode) {took:.2?}");
    assert_eq!(answer, "opencode, up from a team file");
    let (answer, took) = team.ask("dev", "REPLY pi, up from a team file");
    eprintln!("agents: ask to dev (Pi) {took:.2?}");
    assert_eq!(answer, "pi, up from a team file");

    // Their agents' processes, which `down` must end.
    let pids: Vec<u64> = ["web", "ops", "app", "dev"]
        .iter()
        .map(|n| {
            let record: serde_json::Value = serde_json::from_slice(
                &std::fs::read(team.spool.join(format!("peers/{n}.json"))).unwrap(),
            )
            .unwrap();
            record["agent_process"]["pid"]
                .as_u64()
                .unwrap_or_else(|| panic!("{n}: no agent process recorded: {record}"))
        })
        .collect();
    let t = Instant::now();
    let down = rw(&["down", "-f", file.to_str().unwrap()]);
    let said = text(&down.stdout);
    assert!(down.status.success(), "{said}{}", text(&down.stderr));
    eprintln!("agents: `repowire down` took {:.2?}:\n{said}", t.elapsed());
    for name in ["web", "ops", "app", "dev"] {
        assert!(said.contains(&format!("{name}  stopped")), "{said}");
        assert_eq!(team.peer(name)["status"], "offline");
    }
    for pid in pids {
        assert!(!util::procs::alive(pid as u32), "agent {pid} still runs");
    }
}

/// A fork of a busy Codex session answers at once from what the session was told (the fake
/// API sees it in the fork's request), types nothing into the session, cannot write a file
/// (its sandbox makes the file system read-only), has none of the MCP servers of Codex's
/// configuration (repowire's among them), and leaves no session file and no new peer.
#[test]
fn codex_fork_answers_while_busy_and_changes_nothing() {
    let Some(codex) = need_agent("codex", CODEX_PINNED) else {
        return;
    };
    codex_fork_flow(&codex);
}

pub(crate) fn codex_fork_flow(codex: &Path) {
    let team = Team::prepare();
    team.start_codex(codex, &[]);
    let (fact, mut long) = team.busy_after_a_fact("codex", 30);
    let sessions = || {
        let mut n = 0;
        let mut dirs = vec![team.root.join("cx/.codex/sessions")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    dirs.push(e.path());
                } else {
                    n += 1;
                }
            }
        }
        n
    };
    let before = sessions();
    let cx = team.root.join("cx");
    let path = util::path_with(codex.parent().unwrap());
    let fork = |question: &str| {
        let mut c = util::rw(&team.spool);
        c.args(["peer", "ask", "codex", "--fork", question])
            .env("HOME", &cx)
            .env("CODEX_HOME", cx.join(".codex"))
            .env("FAKE_API_KEY", "fake")
            .env("PATH", &path)
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
        run_for(c, Duration::from_secs(90))
    };
    let t = Instant::now();
    let out = fork("REPLY it is 8086");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it is 8086\n");
    eprintln!(
        "agents: a fork of busy Codex answered in {:.2?}",
        t.elapsed()
    );
    let requests = team.fork_requests(fact);
    // None of Codex's MCP servers in the fork: repowire's tools are not offered.
    for r in &requests {
        assert!(
            !r["body"]["tools"].to_string().contains("ask_peer"),
            "repowire's tools in a fork"
        );
    }
    let target = team.root.join("codex/written-by-a-fork.txt");
    let call = format!(
        "CALL_TOOL exec_command {}",
        json!({"cmd": format!("touch {} && echo made", target.display())})
    );
    let out = fork(&call);
    eprintln!(
        "agents: Codex fork told to touch a file: {}",
        text(&out.stdout).trim()
    );
    assert!(!target.exists(), "a fork wrote a file");
    assert_eq!(
        team.peer("codex")["status"],
        "busy",
        "the fork disturbed the session"
    );
    assert_eq!(sessions(), before, "a fork left a session file");
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
    let _ = long.kill();
    let _ = long.wait();
}

/// A fork of a busy OpenCode session answers at once from what the session was told (the fake
/// API sees it in the fork's request), types nothing into the session, is offered no tool but
/// read, grep and glob (none of repowire's), writes no file when told to, and leaves no session
/// in OpenCode's database, no copy in the temporary directory and no new peer.
#[test]
fn opencode_fork_answers_while_busy_and_changes_nothing() {
    let Some(opencode) = need_agent("opencode", OPENCODE_PINNED) else {
        return;
    };
    opencode_fork_flow(&opencode);
}

pub(crate) fn opencode_fork_flow(opencode: &Path) {
    let team = Team::prepare();
    team.start_opencode(opencode);
    // Longer than the forks below take, with OpenCode starting three times for each.
    let (fact, mut long) = team.busy_after_a_fact("opencode", 150);
    let path = util::path_with(opencode.parent().unwrap());
    let tmp = team.root.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let oc = |c: &mut Command| {
        c.env("HOME", team.root.join("oc"))
            .env("OPENCODE_DISABLE_MODELS_FETCH", "1")
            .env("PATH", &path)
            .env("TMPDIR", &tmp)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_DATA_HOME")
            .env_remove("TMUX")
            .env_remove("TMUX_PANE");
    };
    let sessions = || {
        let mut c = Command::new(opencode);
        c.args(["session", "list"])
            .current_dir(team.root.join("opencode"));
        oc(&mut c);
        let out = run_for(c, Duration::from_secs(60));
        text(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("ses_"))
            .count()
    };
    let before = sessions();
    assert!(before >= 1, "no session listed");
    let fork = |question: &str| {
        let mut c = util::rw(&team.spool);
        c.args(["peer", "ask", "opencode", "--fork", question]);
        oc(&mut c);
        run_for(c, Duration::from_secs(120))
    };
    let t = Instant::now();
    let out = fork("REPLY it is 8086");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "it is 8086\n");
    eprintln!(
        "agents: a fork of busy OpenCode answered in {:.2?}",
        t.elapsed()
    );
    let requests = team.fork_requests(fact);
    let offering: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| r["body"]["tools"].is_array())
        .collect();
    assert!(!offering.is_empty(), "no fork request offered tools");
    for r in offering {
        let tools: Vec<&str> = r["body"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(!tools.is_empty(), "a fork request's tools have no names");
        assert!(
            tools
                .iter()
                .all(|t| ["read", "grep", "glob", "list"].contains(t)),
            "a fork was offered {tools:?}"
        );
    }
    let target = team.root.join("opencode/written-by-a-fork.txt");
    for call in [
        format!(
            "CALL_TOOL write {}",
            json!({"filePath": target.display().to_string(), "content": "x"})
        ),
        format!(
            "CALL_TOOL bash {}",
            json!({"command": format!("touch {}", target.display()), "description": "touch"})
        ),
    ] {
        let out = fork(&call);
        eprintln!(
            "agents: OpenCode fork told to {}: {}{}",
            &call[10..15],
            text(&out.stdout).trim(),
            text(&out.stderr).trim()
        );
        assert!(!target.exists(), "a fork wrote a file");
    }
    // A fork ended at its deadline, in the middle of its work, leaves no copy either.
    let mut c = util::rw(&team.spool);
    c.args([
        "peer",
        "ask",
        "opencode",
        "--fork",
        // Its model's reply takes longer than its deadline.
        "SLEEP 30\nREPLY too late",
        "--timeout",
        "4s",
    ]);
    oc(&mut c);
    let out = run_for(c, Duration::from_secs(60));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    util::helpers_done(&team.spool);
    assert_eq!(
        team.peer("opencode")["status"],
        "busy",
        "the fork disturbed the session"
    );
    assert_eq!(
        sessions(),
        before,
        "a fork left a session in OpenCode's database"
    );
    // (OpenCode itself leaves files of its runtime there, when run by the test.)
    let copies: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("repowire-fork"))
        .collect();
    assert!(copies.is_empty(), "a fork left its copy behind: {copies:?}");
    assert_eq!(team.peers().len(), 1, "{:?}", team.peers());
    let _ = long.kill();
    let _ = long.wait();
}
