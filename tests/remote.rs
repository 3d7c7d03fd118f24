//! Peers on another host, `NAME@HOST`, over a real OpenSSH: each test starts its own `sshd` on
//! a loopback port, with its own host key, configuration and authorized key. The "remote" side
//! is a second spool and a second private tmux server with stand-in agents; the remote
//! `repowire` is this build, found on the PATH that sshd gives the session (its HOME is a
//! directory of the test, so no shell startup file of this machine is read). The local side
//! reaches it through `REPOWIRE_SSH="ssh -F <config>"`, whose aliases name the hosts.

use std::io::Write;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::mcp::{Mcp, message_with, state};
use crate::util::ssh::Remote;
use crate::util::{body, spawn_piped, text};

const T: Duration = Duration::from_secs(30);
/// `a` here waits for `b@devbox`, whose turn asks `a@laptop` (back here) in turn: refused
/// at once, as a local cycle is, with exit status 6; a question back to a peer here that
/// waits for nobody goes through, and `a`'s own question is still answered.
#[test]
fn a_deadlock_across_hosts_is_refused_at_once() {
    need_sshd!();
    let r = Remote::start();
    let _a = r.near.agent("alpha", &[]);
    let _g = r.near.agent("gamma", &[]);
    let _b = r.far.agent("beta", &[]);
    let ssh = format!("ssh -F '{}'", r.ssh_config.display());
    let (pa, pb) = (r.near.pane("alpha"), r.far.pane("beta"));
    let a_waits = spawn_piped(r.near.cmd_in(&pa).env("REPOWIRE_SSH", &ssh).args([
        "peer",
        "ask",
        "beta@devbox",
        "SLEEP 8\nREPLY late",
        "--timeout",
        "60s",
    ]));
    assert!(r.far.eventually(T, || r.far.status("beta") == "busy"));
    // beta asks back, from its own pane on the far side.
    let from_beta = |to: &str, text: &str| {
        let mut c = r.far.cmd_in(&pb);
        c.env("REPOWIRE_SSH", &ssh)
            .args(["peer", "ask", to, text, "--timeout", "60s"]);
        let t = Instant::now();
        (r.run(c), t.elapsed())
    };
    let (out, took) = from_beta("alpha@laptop", "hi");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    let here = this_host();
    assert!(
        err.contains("deadlock refused")
            && err.contains(&format!(
                "alpha@{here} is waiting for beta@{here} across hosts"
            )),
        "{err}"
    );
    assert!(
        took < Duration::from_secs(20),
        "the refusal waited {took:?}"
    );
    assert!(
        !r.near
            .history()
            .iter()
            .any(|e| e["to"] == "alpha" && e["event"] == "sent"),
        "beta's question to alpha was queued"
    );
    // Not a circle: gamma waits for nobody.
    let (out, _) = from_beta("gamma@laptop", "REPLY gamma answers beta");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "gamma answers beta\n");
    let out = a_waits.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "late\n");
}

/// The name this machine gives itself in a question's sender, `NAME@HOST`.
fn this_host() -> String {
    let h = crate::util::run_for(
        std::process::Command::new("hostname"),
        std::time::Duration::from_secs(10),
    );
    let h = text(&h.stdout);
    h.trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(64)
        .collect()
}

/// The query id in `s`: the 26 characters after "query ".
fn query_id(s: &str) -> String {
    s.split("query ").nth(1).expect("a query id")[..26].to_string()
}

#[test]
fn ask_notify_and_wait_reach_a_peer_on_another_host() {
    need_sshd!();
    let r = Remote::start();
    let b = r.far.agent("beta", &[]);
    let out = r.ok(&[
        "peer",
        "ask",
        "beta@devbox",
        "what is the users API schema?",
    ]);
    let from = format!("user@{}", this_host());
    assert!(
        out.starts_with(&format!("ECHO: [repowire] Question from {from} (query ")),
        "{out}"
    );
    assert_eq!(body(&out).trim_end(), "what is the users API schema?");
    // The question and its answer are in the remote spool, and only there.
    let id = query_id(&out);
    let events: Vec<String> = r
        .far
        .history()
        .iter()
        .filter(|e| e["id"] == id.as_str())
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["sent", "delivered", "answered"]);
    let resp: Value = serde_json::from_slice(
        &std::fs::read(r.far.home.join(format!("responses/{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(resp["to"], from.as_str());
    assert!(r.near.history().is_empty());

    // A notification.
    let out = r.ok(&["peer", "notify", "beta@devbox", "the build is green"]);
    assert!(
        out.starts_with("sent ") && out.contains("@devbox to beta@devbox (delivered"),
        "{out}"
    );
    assert!(
        b.wait_event(T, |e| e["type"] == "prompt"
            && e["text"]
                .as_str()
                .unwrap()
                .ends_with("\nthe build is green"))
            .is_some(),
        "{:?}",
        b.prompts()
    );

    // --no-wait gives ID@HOST, and `peer wait ID@HOST` the answer.
    let id = r.ok(&["peer", "ask", "beta@devbox", "REPLY later", "--no-wait"]);
    let id = id.trim();
    assert!(id.ends_with("@devbox") && id.len() == 26 + 7, "{id}");
    assert_eq!(r.ok(&["peer", "wait", id]), "later\n");
}

#[test]
fn a_remote_timeout_keeps_the_query_id_and_the_late_answer_is_fetched() {
    need_sshd!();
    let r = Remote::start();
    let _b = r.far.agent("beta", &[]);
    // A session that just started is given a moment before anything is typed into it.
    r.ok(&[
        "peer",
        "ask",
        "beta@devbox",
        "warm up: the agent reads its input now",
    ]);
    // A question not yet typed when its time is up is withdrawn, not kept: on a loaded
    // machine the delivery over ssh can take longer than a second, and then the ask is tried
    // again with twice the time (its answer always takes three times longer).
    let mut secs = 1;
    let (err, question) = loop {
        let question = format!("SLEEP {}\nslow", 3 * secs);
        let timeout = format!("{secs}s");
        let err = r.fails(
            &[
                "peer",
                "ask",
                "beta@devbox",
                &question,
                "--timeout",
                &timeout,
            ],
            5,
        );
        if !err.contains("withdrawn") || secs >= 16 {
            break (err, question);
        }
        secs *= 2;
    };
    assert!(
        err.contains(&format!("no answer from 'beta@devbox' within {secs}s")),
        "{err}"
    );
    let id = format!("{}@devbox", query_id(&err));
    assert!(err.contains(&format!("`repowire peer wait {id}`")), "{err}");
    let out = r.ok(&["peer", "wait", &id, "--timeout", "120s"]);
    assert_eq!(body(&out).trim_end(), question);
}

/// The ssh connection dies while the asker waits: the asker says so, naming the query; the
/// question stays on the other host and its answer is fetched afterwards.
#[test]
fn a_dropped_connection_leaves_the_question_whose_answer_is_fetched_later() {
    need_sshd!();
    let r = Remote::start();
    let b = r.far.agent("beta", &[]);
    let asker = spawn_piped(
        r.cmd()
            .args(["peer", "ask", "beta@devbox", "SLEEP 3\nkept"]),
    );
    assert!(
        b.wait_event(T, |e| e["type"] == "prompt").is_some(),
        "the question never arrived"
    );
    // Kill the ssh client under the asker (and whatever runs it).
    for pid in descendants(asker.id()) {
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    let out = asker.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(9), "{err}");
    assert!(err.contains("the connection to devbox ended"), "{err}");
    let id = format!("{}@devbox", query_id(&err));
    assert!(err.contains(&format!("peer wait {id}")), "{err}");
    let out = r.ok(&["peer", "wait", &id, "--timeout", "30s"]);
    assert_eq!(body(&out).trim_end(), "SLEEP 3\nkept");
}

/// Every process below `pid`, deepest first.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for c in crate::util::procs::children(pid) {
        out.extend(descendants(c));
        out.push(c);
    }
    out
}

#[test]
fn remote_failures_say_which_they_are() {
    need_sshd!();
    let r = Remote::start();
    let _b = r.far.agent("beta", &[]);
    let gone = r.far.agent("gamma", &[]);
    r.far.tmux(["kill-session", "-t", &gone.name]);

    let err = r.fails(&["peer", "ask", "beta@nowhere", "hi"], 9);
    assert!(
        err.contains("cannot reach nowhere") && err.contains("refused"),
        "{err}"
    );
    let err = r.fails(&["peer", "ask", "beta@badkey", "hi"], 9);
    assert!(err.contains("authentication to badkey failed"), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    let err = r.fails(&["peer", "notify", "beta@norepowire", "hi"], 9);
    assert!(
        err.contains("repowire is not installed on norepowire")
            && err.contains(&format!("install repowire {}", env!("CARGO_PKG_VERSION"))),
        "{err}"
    );
    let err = r.fails(&["peer", "ask", "beta@oldrepowire", "hi"], 9);
    assert!(
        err.contains("repowire on oldrepowire is too old")
            && err.contains(&format!("install repowire {}", env!("CARGO_PKG_VERSION"))),
        "{err}"
    );
    // A repowire that speaks another protocol refuses before it does anything.
    let mut serve = r.far.cmd();
    serve.arg("remote").stdin(Stdio::piped());
    let mut child = spawn_piped(&mut serve);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"protocol\":2,\"op\":\"list\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["error"]["code"], 2, "{reply}");
    let msg = reply["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("speaks remote protocol 1, the asking repowire speaks 2"),
        "{msg}"
    );
    // The remote's own errors keep their exit codes.
    let err = r.fails(&["peer", "ask", "betta@devbox", "hi"], 3);
    assert!(
        err.contains("on devbox: unknown peer 'betta' (did you mean 'beta'?)"),
        "{err}"
    );
    let err = r.fails(&["peer", "ask", "gamma@devbox", "hi"], 4);
    assert!(err.contains("on devbox: peer 'gamma' is offline"), "{err}");
    let err = r.fails(&["peer", "wait", "01AAAAAAAAAAAAAAAAAAAAAAAA@devbox"], 2);
    assert!(err.contains("on devbox: there is no query"), "{err}");
    // Nothing was queued anywhere.
    assert!(r.near.history().is_empty());
    assert!(r.far.history().is_empty(), "{:?}", r.far.history());
}

/// Names, hosts and text that would do harm in a shell or a terminal: names and hosts are
/// refused before ssh runs, text arrives exactly as it does locally (made inert), and no shell
/// on either side runs any of it.
#[test]
fn hostile_names_and_text_never_reach_a_shell() {
    need_sshd!();
    let r = Remote::start();
    let b = r.far.agent("beta", &[]);
    let pwned = r.dir.path().join("pwned");
    let p = pwned.display().to_string();
    for name in [
        format!("beta$(touch {p})@devbox"),
        format!("beta@devbox;touch {p}"),
        format!("beta@devbox$(touch {p})"),
        format!("beta@`touch {p}`"),
        format!("beta@-oProxyCommand=touch {p}"),
        format!("beta@-oProxyCommand=touch\t{p}"),
        "beta@dev\nbox".to_string(),
        "beta@dev'box".to_string(),
        "beta@".to_string(),
        "be ta@devbox".to_string(),
    ] {
        let err = r.fails(&["peer", "ask", &name, "hi"], 2);
        assert!(
            err.contains("invalid host") || err.contains("invalid peer name"),
            "{name:?}: {err}"
        );
        r.fails(&["peer", "notify", &name, "hi"], 2);
    }
    // Each text with what the agent must receive (see tests/hostile.rs).
    let corpus = [
        (format!("'; touch {p}; echo '"), None),
        (format!("\"; touch {p}; echo \""), None),
        (format!("$(touch {p})"), None),
        (format!("`touch {p}`"), None),
        (format!("a; touch {p}\nb && touch {p} | cat"), None),
        (
            format!("\x1b[201~\r!touch {p}"),
            Some(format!("\u{241b}[201~\n!touch {p}")),
        ),
        (format!("\n/exit\n!touch {p}"), None),
        (
            "line one\rline two\r\n\ttabbed".to_string(),
            Some("line one\nline two\n    tabbed".to_string()),
        ),
        ("cancel".to_string(), None),
        ("\x1b".to_string(), Some("\u{241b}".to_string())),
        ("{\"op\":\"list\",\"protocol\":1}".to_string(), None),
        (
            "\u{9b}201~c1 csi".to_string(),
            Some("\u{fffd}201~c1 csi".to_string()),
        ),
        ("x".repeat(5000), None),
    ];
    for (t, want) in &corpus {
        let want = want.as_ref().unwrap_or(t);
        let mut child = spawn_piped(
            r.cmd()
                .args(["peer", "ask", "beta@devbox", "-"])
                .stdin(Stdio::piped()),
        );
        child.stdin.take().unwrap().write_all(t.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{t:?}: {}", text(&out.stderr));
        let answer = text(&out.stdout);
        assert_eq!(
            body(answer.strip_prefix("ECHO: ").unwrap()).trim_end_matches('\n'),
            want.trim_end_matches('\n'),
            "{t:?}"
        );
    }
    // The remote spool holds each text exactly as sent.
    let sent: Vec<String> = r
        .far
        .history()
        .iter()
        .filter(|e| e["event"] == "sent")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sent, corpus.map(|(t, _)| t));
    for bad in ["slash", "bang", "escape", "ctrl-c", "interrupted", "exit"] {
        assert!(b.of_type(bad).is_empty(), "{bad}: {:?}", b.of_type(bad));
    }
    assert!(!pwned.exists());
}

#[test]
fn list_all_shows_remote_peers_and_an_unreachable_host_within_its_bound() {
    need_sshd!();
    let r = Remote::start();
    let a = r.near.agent("alpha", &[]);
    let b = r.far.agent("beta", &[]);
    // A host that takes the connection and then says nothing.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&r.ssh_config)
        .unwrap()
        .write_all(format!("Host silent\n  HostName 127.0.0.1\n  Port {silent_port}\n").as_bytes())
        .unwrap();
    let accepted = std::thread::spawn(move || {
        let conn = silent.accept();
        std::thread::sleep(Duration::from_secs(20));
        drop(conn);
    });
    r.set_remotes(&["devbox", "nowhere", "silent"]);

    // Without --all, only the local peers.
    let local: Vec<Value> = serde_json::from_str(&r.ok(&["peer", "list", "--json"])).unwrap();
    assert_eq!(local.len(), 1);

    let start = Instant::now();
    let all: Vec<Value> =
        serde_json::from_str(&r.ok(&["peer", "list", "--all", "--json"])).unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert_eq!(all[0]["name"], "alpha");
    assert!(all[0].get("host").is_none());
    let beta = all
        .iter()
        .find(|p| p["name"] == "beta@devbox")
        .unwrap_or_else(|| panic!("no beta@devbox: {all:?}"));
    assert_eq!(beta["host"], "devbox");
    assert_eq!(beta["status"], "online");
    assert_eq!(beta["transport"], "tmux");
    assert_eq!(
        beta["path"].as_str().unwrap(),
        b.work.canonicalize().unwrap().to_str().unwrap()
    );
    let nowhere = all
        .iter()
        .find(|p| p["host"] == "nowhere")
        .expect("nowhere");
    assert_eq!(nowhere["status"], "unreachable");
    assert!(
        nowhere["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach nowhere")
    );
    let silent = all.iter().find(|p| p["host"] == "silent").expect("silent");
    assert_eq!(silent["status"], "unreachable");
    assert!(
        silent["error"]
            .as_str()
            .unwrap()
            .contains("did not reply within"),
        "{silent}"
    );

    let table = r.ok(&["peer", "list", "--all"]);
    assert!(
        table.contains("beta@devbox") && table.contains("nowhere: unreachable"),
        "{table}"
    );

    // Broadcast: local only, unless --all; a host that cannot be reached fails it (exit 9)
    // without holding back the others.
    let out = r.ok(&["peer", "broadcast", "local news"]);
    assert_eq!(out.trim(), "sent to alpha now");
    // alpha takes it as a turn: wait until that turn is over, so it is idle again.
    assert!(a.wait_event(T, |e| e["type"] == "answer").is_some());
    assert!(r.near.eventually(T, || r.near.status("alpha") == "online"));
    r.set_remotes(&["devbox", "nowhere"]);
    let out = r.repowire(&["peer", "broadcast", "--all", "news for all"]);
    assert_eq!(out.status.code(), Some(9), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "sent to alpha, beta@devbox now");
    assert!(
        text(&out.stderr).contains("not sent to nowhere"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        b.wait_event(T, |e| e["type"] == "prompt"
            && e["text"].as_str().unwrap().ends_with("\nnews for all"))
            .is_some(),
        "{:?}",
        b.prompts()
    );
    drop(accepted);
}

/// The MCP tools take `NAME@HOST` and `ID@HOST`, and list_peers includes the remotes.
#[test]
fn mcp_tools_reach_a_peer_on_another_host() {
    need_sshd!();
    let r = Remote::start();
    let b = r.far.agent("beta", &[]);
    r.set_remotes(&["devbox", "nowhere"]);
    let mut mcp = Mcp::start(&r.near, r.cmd());

    let list = mcp.ok("list_peers", json!({}));
    assert!(list.contains("beta@devbox: online"), "{list}");
    assert!(list.contains("nowhere: unreachable"), "{list}");

    let id = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta@devbox", "query": "what is the schema?"}),
    );
    let (answer, error) = mcp.result(id);
    assert!(!error, "{answer}");
    assert_eq!(body(&answer), "what is the schema?");
    // Progress came from the other host.
    assert!(!mcp.progress(id).is_empty());

    // A timeout names ID@HOST for get_answer, which fetches the answer once it comes.
    let (err, error) = mcp.call(
        "ask_peer",
        json!({"peer_name": "beta@devbox", "query": "SLEEP 3\nslow", "timeout_seconds": 1}),
    );
    assert!(error, "{err}");
    assert!(err.contains("get_answer"), "{err}");
    let qid = format!("{}@devbox", query_id(&err));
    assert!(err.contains(&qid), "{err}");
    let (now, error) = mcp.call("get_answer", json!({"query_id": qid}));
    assert!(!error && now.starts_with("not answered yet"), "{now}");
    assert!(now.contains("to 'beta@devbox'"), "{now}");
    let mut answer = String::new();
    assert!(r.near.eventually(T, || {
        answer = mcp.ok("get_answer", json!({"query_id": qid}));
        answer.starts_with("ECHO: ")
    }));
    assert_eq!(body(&answer), "SLEEP 3\nslow");

    let sent = mcp.ok(
        "notify_peer",
        json!({"peer_name": "beta@devbox", "message": "done here"}),
    );
    assert!(sent.contains("to beta@devbox"), "{sent}");
    assert!(
        b.wait_event(T, |e| e["type"] == "prompt"
            && e["text"].as_str().unwrap().ends_with("\ndone here"))
            .is_some()
    );

    // A cancelled call withdraws its question from the other host while it is queued.
    r.ok(&["peer", "ask", "beta@devbox", "SLEEP 3\nbusy", "--no-wait"]);
    assert!(r.far.eventually(T, || r.far.status("beta") == "busy"));
    let id = mcp.call_start(
        "ask_peer",
        json!({"peer_name": "beta@devbox", "query": "never mind"}),
    );
    let progress =
        |v: &Value| v["method"] == "notifications/progress" && v["params"]["progressToken"] == id;
    assert!(mcp.wait_for(T, progress).is_some(), "no progress");
    mcp.cancel(id);
    let msg = message_with(&r.far, "never mind");
    let qid = msg["id"].as_str().unwrap();
    assert!(
        r.far.eventually(T, || state(&r.far, qid) == "cancelled"),
        "{}",
        state(&r.far, qid)
    );

    let (err, error) = mcp.call(
        "ask_peer",
        json!({"peer_name": "beta@badkey", "query": "hi"}),
    );
    assert!(
        error && err.contains("authentication to badkey failed"),
        "{err}"
    );
}
