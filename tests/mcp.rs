//! `repowire mcp`, the MCP server of each agent session: the real binary over real pipes against
//! a private tmux server with stand-in agents (every tool, concurrency, progress, cancellation,
//! timeout, exit); the `mcp` Python SDK's stdio client, a client from the ecosystem; and the
//! real Claude Code CLI, whose model calls `mcp__repowire__ask_peer` through the fake API.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::claude_code::{Claude, ClaudeCode, PINNED, need_claude, repowire_mcp};
use crate::util::mcp::{Mcp, PROTOCOL, T, events_of, message_with, state};
use crate::util::{self, Mesh, body, eventually, read_jsonl, run_for, target_dir, text, unix_now};

/// What every agent session pays for in its context: the whole tools/list result.
const MAX_TOOLS_JSON: usize = 4096;

#[test]
fn mcp_speaks_the_protocol_claude_code_uses_and_its_tool_list_is_small() {
    let m = Mesh::new();
    let mut cmd = m.cmd();
    cmd.arg("mcp");
    let mut mcp = Mcp::spawn(&m, cmd);
    // Claude Code 2.1.330's first message, verbatim (as recorded from the real CLI): "method
    // not found" makes it fall back to `initialize`.
    mcp.send(
        json!({"jsonrpc": "2.0", "id": "server-discover-probe-1", "method": "server/discover",
        "params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "claude-code", "version": "2.1.330"},
            "io.modelcontextprotocol/clientCapabilities": {"roots": {"listChanged": true},
                "extensions": {"io.modelcontextprotocol/tasks": {}}}}}}),
    );
    let r = mcp
        .wait_for(T, |v| v["id"] == "server-discover-probe-1")
        .unwrap();
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let id = mcp.request(
        "initialize",
        json!({"protocolVersion": PROTOCOL, "capabilities": {"roots": {"listChanged": true}},
               "clientInfo": {"name": "claude-code", "version": "2.1.330"}}),
    );
    let r = mcp.response(id);
    assert_eq!(r["result"]["protocolVersion"], PROTOCOL, "{r}");
    assert_eq!(r["result"]["serverInfo"]["name"], "repowire");
    assert!(r["result"]["capabilities"]["tools"].is_object(), "{r}");
    mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    let id = mcp.request("tools/list", json!({}));
    let r = mcp.response(id);
    let size = r["result"].to_string().len();
    eprintln!("mcp: tools/list result is {size} bytes");
    assert!(size < MAX_TOOLS_JSON, "tools/list is {size} bytes: {r}");
    let tools = r["result"]["tools"].as_array().unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "ask_peer",
            "ask_peers",
            "broadcast",
            "get_answer",
            "list_peers",
            "notify_peer",
            "register_peer"
        ]
    );
    for t in tools {
        let d = t["description"].as_str().unwrap();
        assert!(!d.is_empty() && d.len() <= 160, "{d}");
    }

    // An unknown method is an error, not the end of the server.
    let id = mcp.request("no/such/method", json!({}));
    assert_eq!(mcp.response(id)["error"]["code"], -32601);
    let id = mcp.request("ping", json!({}));
    assert!(mcp.response(id)["result"].is_object());

    // It exits as soon as its stdin closes.
    let t = Instant::now();
    mcp.stdin = None;
    assert!(mcp.exited_within(Duration::from_secs(5)), "still running");
    eprintln!("mcp: exited {:.0?} after stdin closed", t.elapsed());
    assert!(mcp.child.wait().unwrap().success());
    assert!(mcp.got.iter().all(|v| v.get("not_protocol").is_none()));
}

#[test]
fn mcp_lists_peers_marking_the_caller_and_asks_with_progress() {
    need_tmux!();
    let m = Mesh::new();
    let a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let mut mcp = Mcp::start(&m, m.cmd_in(&m.pane("alpha")));
    let list = mcp.ok("list_peers", json!({}));
    let path = |w: &Path| w.canonicalize().unwrap().display().to_string();
    assert_eq!(
        list,
        format!(
            "alpha: online, claude, tmux, {} (you)\nbeta: online, claude, tmux, {}\n",
            path(&a.work),
            path(&b.work)
        )
    );

    let t = Instant::now();
    let id = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "SLEEP 1\nwhat is your schema?"}),
    );
    let (answer, error) = mcp.result(id);
    eprintln!(
        "mcp: ask_peer round trip {:.2?} (a peer just started, whose turn takes 1s)",
        t.elapsed()
    );
    assert!(!error, "{answer}");
    assert!(
        answer.starts_with("ECHO: [repowire] Question from alpha (query "),
        "{answer}"
    );
    assert_eq!(body(&answer), "SLEEP 1\nwhat is your schema?");
    // Each stage once, in order, with a growing progress value.
    let progress = mcp.progress(id);
    assert_eq!(
        progress.last().map(String::as_str),
        Some("answering"),
        "{progress:?}"
    );
    assert!(progress.contains(&"delivered".to_string()), "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] != w[1]), "{progress:?}");
    let values: Vec<f64> = mcp
        .got
        .iter()
        .filter(|v| v["method"] == "notifications/progress")
        .map(|v| v["params"]["progress"].as_f64().unwrap())
        .collect();
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{values:?}");

    // Outside tmux the caller is `user`, and no peer is marked.
    let mut outside = Mcp::start(&m, m.cmd());
    let list = outside.ok("list_peers", json!({}));
    assert!(!list.contains("(you)"), "{list}");
    assert!(
        list.ends_with("your messages are sent as 'user')\n"),
        "{list}"
    );
}

/// A repowire upgraded while an agent's MCP server runs (`cargo install` replaces the file):
/// the server's own binary is gone, and the helpers it starts (the deliverer) run the new one
/// at the same path.
#[test]
fn mcp_keeps_working_after_its_binary_is_replaced() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let copy = m.dir.path().join("installed/repowire");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(crate::util::bin(), &copy).unwrap();
    let mut cmd = Command::new(&copy);
    cmd.env("REPOWIRE_HOME", &m.home)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE");
    let mut mcp = Mcp::start(&m, cmd);
    // The upgrade: a new file at the same path.
    std::fs::remove_file(&copy).unwrap();
    std::fs::copy(crate::util::bin(), &copy).unwrap();
    let answer = mcp.ok(
        "ask_peer",
        json!({"peer_name": "beta", "query": "REPLY still here"}),
    );
    assert_eq!(answer, "still here");
}

/// `ask_peers`: every answer under its peer's name, the progress counting them as they come;
/// an unknown peer and the caller itself are reported for themselves, not failing the call.
/// `list_peers` shows each peer's description.
#[test]
fn mcp_ask_peers_labels_each_answer_and_each_failure() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let _c = m.agent("gamma", &[]);
    m.ok(["peer", "describe", "beta", "the billing service"]);
    let mut mcp = Mcp::start(&m, m.cmd_in(&m.pane("alpha")));
    let list = mcp.ok("list_peers", json!({}));
    let path = b.work.canonicalize().unwrap();
    assert!(
        list.contains(&format!(
            "beta: online, claude, tmux, {} - the billing service\n",
            path.display()
        )),
        "{list}"
    );
    let id = mcp.call_start(
        "ask_peers",
        json!({"peer_names": ["beta", "gamma", "nobody"], "query": "SLEEP 0.5\nyour schema?"}),
    );
    let (answer, error) = mcp.result(id);
    assert!(!error, "{answer}");
    for name in ["beta", "gamma"] {
        let block = answer
            .split(&format!("==> {name} <==\n"))
            .nth(1)
            .unwrap_or_else(|| panic!("no answer of {name}: {answer}"));
        assert!(
            block.starts_with("ECHO: [repowire] Question from alpha"),
            "{answer}"
        );
    }
    assert!(
        answer.contains("==> nobody (no answer) <==\nunknown peer 'nobody'"),
        "{answer}"
    );
    let progress = mcp.progress(id);
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert!(
        progress[0].starts_with("0 of 3 answered (latest: nobody)"),
        "{progress:?}"
    );
    assert!(progress[2].starts_with("2 of 3 answered"), "{progress:?}");
    let bad = mcp.call_start("ask_peers", json!({"peer_names": [], "query": "x"}));
    let (why, error) = mcp.result(bad);
    assert!(error && why.contains("peer_names is empty"), "{why}");
}

#[test]
fn mcp_calls_run_concurrently() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let mut mcp = Mcp::start(&m, m.cmd());
    // Two asks at once: the second queues behind the first.
    let first = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "SLEEP 1.5\nfirst"}),
    );
    mcp.wait_progress(first, "answering");
    let second = mcp.call_start("ask_peer", json!({"peer_name": "beta", "query": "second"}));
    mcp.wait_progress(second, "queued behind 1");
    // A quick call is answered while both asks wait.
    let list = mcp.call_start("list_peers", json!({}));
    let (peers, _) = mcp.result(list);
    assert!(peers.contains("beta: busy"), "{peers}");
    let (one, _) = mcp.result(first);
    let (two, _) = mcp.result(second);
    let order: Vec<&Value> = mcp
        .got
        .iter()
        .filter(|v| {
            v.get("result").is_some()
                && [first, second, list].contains(&v["id"].as_u64().unwrap_or(0))
        })
        .collect();
    assert_eq!(order[0]["id"], list, "{order:?}");
    assert_eq!(body(&one), "SLEEP 1.5\nfirst");
    assert_eq!(body(&two), "second");
}

#[test]
fn mcp_ask_that_times_out_names_the_query_and_get_answer_fetches_it_later() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.warm_agent("beta");
    let mut mcp = Mcp::start(&m, m.cmd());
    let (err, error) = mcp.call(
        "ask_peer",
        json!({"peer_name": "beta", "query": "SLEEP 2\nslow", "timeout_seconds": 1}),
    );
    assert!(error, "{err}");
    assert!(err.contains("get_answer"), "{err}");
    let id = err.split("(query ").nth(1).expect("the query id")[..26].to_string();
    let (now, error) = mcp.call("get_answer", json!({"query_id": id}));
    assert!(!error && now.starts_with("not answered yet"), "{now}");
    let received = m.home.join(format!("responses/{id}.read"));
    assert!(
        !received.exists(),
        "an answer nobody has had yet is marked received"
    );
    let mut answer = String::new();
    assert!(m.eventually(T, || {
        answer = mcp.ok("get_answer", json!({"query_id": id}));
        answer.starts_with("ECHO: ")
    }));
    assert_eq!(body(&answer), "SLEEP 2\nslow");
    assert_eq!(events_of(&m, &id), ["sent", "delivered", "answered"]);
    // Received now, so housekeeping may remove it in time (the asker itself gave up on it).
    assert!(received.exists());
}

#[test]
fn mcp_cancel_withdraws_a_queued_ask_and_records_a_delivered_one() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let mut mcp = Mcp::start(&m, m.cmd_in(&m.pane("alpha")));

    // Queued behind a busy turn: withdrawn, and never typed.
    m.ok(["peer", "ask", "beta", "SLEEP 2", "--no-wait"]);
    let call = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "never typed"}),
    );
    mcp.wait_progress(call, "queued behind 1");
    let id = message_with(&m, "never typed")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    mcp.cancel(call);
    assert!(m.eventually(T, || state(&m, &id) == "cancelled"));
    let took = t.elapsed();
    eprintln!("mcp: a queued ask was withdrawn {took:.0?} after its cancellation");
    assert!(took < Duration::from_millis(800), "{took:?}");
    assert_eq!(events_of(&m, &id), ["sent", "cancelled"]);
    assert!(b.wait_event(T, |e| e["type"] == "answer").is_some());
    assert!(m.eventually(T, || m.status("beta") == "online"));
    m.helpers_done();
    assert_eq!(b.prompts().len(), 1, "{:?}", b.prompts());

    // Already typed: it stays delivered, its answer still lands, and the asker no longer
    // counts as waiting (beta may ask alpha).
    let call = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "SLEEP 2\nhalf way"}),
    );
    mcp.wait_progress(call, "answering");
    let id = message_with(&m, "SLEEP 2\nhalf way")["id"]
        .as_str()
        .unwrap()
        .to_string();
    mcp.cancel(call);
    assert!(m.eventually(T, || events_of(&m, &id).contains(&"cancelled".to_string())));
    let spool = repowire::spool::Spool::open(&m.home).unwrap();
    assert!(m.eventually(T, || !spool.is_locked(&format!("queue/{id}.lock"))));
    assert_eq!(state(&m, &id), "delivered");
    assert!(m.eventually(T, || state(&m, &id) == "answered"));
    assert_eq!(
        events_of(&m, &id),
        ["sent", "delivered", "cancelled", "answered"]
    );
    let answer = mcp.ok("get_answer", json!({"query_id": id}));
    assert_eq!(body(&answer), "SLEEP 2\nhalf way");
    // A cancelled call gets no response.
    assert!(
        mcp.wait_for(Duration::from_millis(300), |v| v["id"] == call)
            .is_none()
    );
}

#[test]
fn mcp_exits_on_stdin_close_or_parent_death_withdrawing_what_it_waits_for() {
    need_tmux!();
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    m.ok(["peer", "ask", "beta", "SLEEP 3", "--no-wait"]);
    assert!(m.eventually(T, || m.status("beta") == "busy"));

    let mut mcp = Mcp::start(&m, m.cmd());
    let call = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "left behind"}),
    );
    mcp.wait_progress(call, "queued behind 1");
    let t = Instant::now();
    mcp.stdin = None;
    assert!(mcp.exited_within(Duration::from_secs(5)));
    let took = t.elapsed();
    eprintln!("mcp: exited {took:.0?} after stdin closed, with an ask waiting");
    assert!(took < Duration::from_secs(1), "{took:?}");
    let id = message_with(&m, "left behind")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state(&m, &id), "cancelled");

    // Its parent (a shell standing in for the agent) dies while its stdin stays open: the
    // pipe is held here, and was handed to it on another descriptor, as a background job's
    // stdin would otherwise be /dev/null.
    let mut shell = Command::new("sh");
    shell
        .args(["-c", r#"exec 3<&0; "$0" mcp <&3 3<&- & wait"#])
        .arg(util::bin())
        .env("REPOWIRE_HOME", &m.home)
        .env_remove("TMUX")
        .env_remove("TMUX_PANE");
    let mut mcp = Mcp::spawn(&m, shell);
    let id = mcp.request(
        "initialize",
        json!({"protocolVersion": PROTOCOL, "capabilities": {},
               "clientInfo": {"name": "repowire-test", "version": "0"}}),
    );
    mcp.response(id);
    let call = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta", "query": "orphaned"}),
    );
    mcp.wait_progress(call, "queued behind 1");
    let t = Instant::now();
    mcp.child.kill().unwrap();
    mcp.child.wait().unwrap();
    // Only the server still holds its stdout: the reader sees its end when it exits.
    assert!(mcp.wait_for(Duration::from_secs(5), |_| false).is_none());
    assert!(mcp.closed, "still running 5s after its parent died");
    let took = t.elapsed();
    eprintln!("mcp: exited {took:.0?} after its parent died, with an ask waiting");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let id = message_with(&m, "orphaned")["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(state(&m, &id), "cancelled");
}

#[test]
fn mcp_notifies_broadcasts_and_registers() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let b = m.agent("beta", &[]);
    let c = m.agent("gamma", &[]);
    let mut mcp = Mcp::start(&m, m.cmd_in(&m.pane("alpha")));
    let out = mcp.ok(
        "notify_peer",
        json!({"peer_name": "beta", "message": "the build is green"}),
    );
    assert!(
        out.starts_with("sent ") && out.ends_with(" to beta (delivered now)"),
        "{out}"
    );
    assert!(b.wait_event(T, |e| e["type"] == "answer").is_some());
    assert!(
        b.prompts()[0].starts_with("[repowire] Notification from alpha"),
        "{:?}",
        b.prompts()
    );
    assert!(m.eventually(T, || m.status("beta") == "online"));

    let out = mcp.ok("broadcast", json!({"message": "deploy at noon"}));
    assert_eq!(out, "sent to beta, gamma now");
    for agent in [&b, &c] {
        assert!(m.eventually(T, || agent.prompts().iter().any(|p| {
            p.starts_with("[repowire] Broadcast from alpha") && body(p) == "deploy at noon"
        })));
    }

    let dir = c.work.display().to_string();
    let out = mcp.ok(
        "register_peer",
        json!({"name": "frontend", "tmux_session": "gamma", "path": dir}),
    );
    assert_eq!(
        out,
        format!(
            "registered frontend (pane {}, {})",
            m.pane("gamma"),
            c.work.canonicalize().unwrap().display()
        )
    );
    let list = mcp.ok("list_peers", json!({}));
    let names: Vec<&str> = list.lines().filter_map(|l| l.split(':').next()).collect();
    assert_eq!(names, ["alpha", "beta", "frontend"], "{list}");
}

#[test]
fn mcp_bad_arguments_are_tool_errors_that_say_what_to_do() {
    need_tmux!();
    let m = Mesh::new();
    let _a = m.agent("alpha", &[]);
    let _b = m.agent("beta", &[]);
    let mut mcp = Mcp::start(&m, m.cmd_in(&m.pane("alpha")));
    let long = "x".repeat(40_000);
    let cases = [
        (
            "ask_peer",
            json!({"peer_name": "betta", "query": "hi"}),
            "unknown peer 'betta' (did you mean 'beta'?)",
        ),
        (
            "ask_peer",
            json!({"peer_name": "beta", "query": "  \n"}),
            "the message is empty",
        ),
        (
            "ask_peer",
            json!({"peer_name": "../etc", "query": "hi"}),
            "invalid peer name",
        ),
        (
            "ask_peer",
            json!({"peer_name": "beta", "query": long}),
            "write the content to a file",
        ),
        (
            "ask_peer",
            json!({"peer_name": "alpha", "query": "hi"}),
            "cannot ask itself",
        ),
        (
            "ask_peer",
            json!({"peer_name": "beta", "query": "hi", "timeout_seconds": 0}),
            "timeout_seconds must be from 1 to 3600",
        ),
        (
            "ask_peer",
            json!({"peer_name": "beta"}),
            "missing field `query`",
        ),
        (
            "get_answer",
            json!({"query_id": "../../etc/passwd"}),
            "invalid query id",
        ),
        (
            "get_answer",
            json!({"query_id": "01AAAAAAAAAAAAAAAAAAAAAAAA"}),
            "there is no query 01AAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (
            "notify_peer",
            json!({"peer_name": "nobody", "message": "hi"}),
            "unknown peer 'nobody'",
        ),
        ("broadcast", json!({"message": ""}), "the message is empty"),
        (
            "register_peer",
            json!({"name": "user", "tmux_session": "alpha", "path": "/"}),
            "'user' is reserved",
        ),
        (
            "register_peer",
            json!({"name": "x", "tmux_session": "nosuch", "path": "/"}),
            "cannot find tmux target 'nosuch'",
        ),
    ];
    for (tool, args, want) in cases {
        let (text, error) = mcp.call(tool, args.clone());
        assert!(error && text.contains(want), "{tool} {args}: {text}");
    }

    // Deadlock: beta waits for alpha, so alpha asking beta is refused at once.
    let mut beta_waits = m
        .cmd_in(&m.pane("beta"))
        .args(["peer", "ask", "alpha", "SLEEP 3"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(m.eventually(T, || m.status("alpha") == "busy"));
    // Refused, and not answered once alpha's turn ends: the error says so. (Not timed: on a
    // busy machine anything can take seconds.)
    let (text, error) = mcp.call("ask_peer", json!({"peer_name": "beta", "query": "hi"}));
    assert!(
        error
            && text.starts_with(
                "deadlock refused: alpha would wait for beta, beta is waiting for alpha"
            ),
        "{text}"
    );
    assert!(beta_waits.wait().unwrap().success());
    // None of it hurt the server.
    assert!(
        mcp.ok("list_peers", json!({}))
            .contains("alpha: online, claude")
    );
}

/// The Python of `<target>/mcp-venv`, with the pinned `mcp` SDK installed from PyPI (once per
/// run; a no-op when it is there), or why that cannot be done here.
fn python_sdk() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = target_dir().join("mcp-venv");
            let python = venv.join("bin/python");
            let t = Instant::now();
            if !python.exists() {
                let mut cmd = Command::new("python3");
                cmd.args(["-m", "venv"]).arg(&venv);
                let out = cmd
                    .output()
                    .map_err(|e| format!("python3 is not installed ({e})"))?;
                if !out.status.success() {
                    return Err(format!(
                        "python3 cannot make a venv: {}",
                        text(&out.stderr).trim()
                    ));
                }
            }
            let requirements =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-client-requirements.txt");
            let mut pip = Command::new(&python);
            pip.args([
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements);
            let out = run_for(pip, Duration::from_secs(600));
            if !out.status.success() {
                return Err(format!(
                    "pip install -r {} failed (is PyPI reachable?): {}",
                    requirements.display(),
                    text(&out.stderr).trim()
                ));
            }
            if t.elapsed() > Duration::from_secs(3) {
                eprintln!("mcp: installed the mcp Python SDK in {:.1?}", t.elapsed());
            }
            Ok(python)
        })
        .clone()
}

#[test]
fn mcp_python_sdk_client_lists_and_calls_the_tools() {
    need_tmux!();
    let python = match python_sdk() {
        Ok(p) => p,
        Err(why) => {
            crate::util::skipped(&why);
            return;
        }
    };
    let m = Mesh::new();
    let _b = m.agent("beta", &[]);
    let question = "SLEEP 1\nasked by the Python SDK";
    let mut client = Command::new(python);
    client
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_client.py"))
        .arg(util::bin())
        .args(["beta", question])
        .env("REPOWIRE_HOME", &m.home);
    let out = run_for(client, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(v["protocol_version"], PROTOCOL, "{v}");
    assert_eq!(
        v["tools"],
        json!([
            "ask_peer",
            "ask_peers",
            "broadcast",
            "get_answer",
            "list_peers",
            "notify_peer",
            "register_peer"
        ])
    );
    assert_eq!(v["list_peers"]["is_error"], false, "{v}");
    assert!(
        v["list_peers"]["text"]
            .as_str()
            .unwrap()
            .starts_with("beta: online, claude, "),
        "{v}"
    );
    assert_eq!(v["ask_peer"]["is_error"], false, "{v}");
    let answer = v["ask_peer"]["text"].as_str().unwrap();
    assert!(
        answer.starts_with("ECHO: [repowire] Question from user"),
        "{answer}"
    );
    assert_eq!(body(answer), question);
    assert_eq!(
        v["progress"].as_array().unwrap().last(),
        Some(&json!("answering")),
        "{v}"
    );
}

/// Session alpha's model calls `mcp__repowire__ask_peer` for beta; the question is typed into
/// beta's session, beta's turn answers, and alpha's tool result is that answer.
#[test]
fn claude_code_asks_a_peer_through_the_mcp_tool() {
    let Some(claude) = need_claude(PINNED) else {
        return;
    };
    asks_a_peer_through_the_mcp_tool(&claude);
}

pub(crate) fn asks_a_peer_through_the_mcp_tool(claude: &ClaudeCode) {
    let cc = Claude::start(
        claude,
        json!({"permissions": {"allow": ["mcp__repowire"]}}),
        json!({"repowire": repowire_mcp()}),
    );
    let question = "REPLY pong from beta, through MCP";
    let call = format!(
        "CALL_TOOL mcp__repowire__ask_peer {}",
        json!({"peer_name": "beta", "query": question})
    );
    let (t0, t) = (unix_now(), Instant::now());
    let reply = cc.turn("alpha", &call);
    eprintln!(
        "claude {}: alpha's turn calling ask_peer(beta) took {:.2?}",
        claude.version,
        t.elapsed()
    );
    assert_eq!(reply, "TOOL_RESULT: pong from beta, through MCP");
    // It went through the spool as alpha's question, and beta's own turn answered it.
    let sent = cc
        .history()
        .into_iter()
        .find(|e| e["event"] == "sent" && e["text"] == question)
        .expect("the question is in the history");
    assert_eq!(
        (&sent["from"], &sent["to"]),
        (&json!("alpha"), &json!("beta"))
    );
    let id = sent["id"].as_str().unwrap();
    assert_eq!(cc.event_names(id), ["sent", "delivered", "answered"]);
    let answered = || -> Vec<_> {
        cc.hooks("beta", "Stop")
            .into_iter()
            .filter(|(ts, _)| *ts > t0)
            .collect()
    };
    eventually(Duration::from_secs(10), || !answered().is_empty());
    assert_eq!(answered().len(), 1, "{:?}", answered());
    let recorded = eventually(Duration::from_secs(10), || {
        cc.replies("beta").last().map(String::as_str) == Some("pong from beta, through MCP")
    });
    assert!(recorded, "{:?}", cc.replies("beta"));
    // Alpha's transcript holds the tool result (written around its Stop hook).
    let transcript = &cc.session("alpha").transcript;
    let recorded = eventually(Duration::from_secs(10), || {
        read_jsonl(transcript).iter().any(|l| {
            l["type"] == "user"
                && l["message"]["content"][0]["type"] == "tool_result"
                && l.to_string().contains("pong from beta, through MCP")
        })
    });
    assert!(recorded, "no tool result in {}", transcript.display());
}
