//! Load: many askers at once, many peers at once, and a soak of asks, notifications and
//! broadcasts through stand-in agents. Every message arrives exactly once, at its own peer, in
//! queue order; every asker gets its own answer; the history holds each message once; `gc`
//! brings the spool back to a size that does not grow with the traffic.
//!
//! The soak runs a few rounds in the normal suite; `REPOWIRE_SOAK=ROUNDS` makes it longer
//! (GUIDE.md gives the command and the figures of a long run).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Agent, Mesh, body, spawn_piped, text};

/// Generous: the machine is shared, and a queue of ten is typed one message at a time.
const T: Duration = Duration::from_secs(180);

/// The message id in a prompt's header line.
fn prompt_id(prompt: &str) -> String {
    let first = prompt.lines().next().unwrap_or_default();
    let at = first
        .find("(query ")
        .map(|i| i + 7)
        .or_else(|| first.find("(message ").map(|i| i + 9))
        .unwrap_or_else(|| panic!("not a repowire prompt: {first}"));
    first[at..at + 26].to_string()
}

/// Waits for every asker, checking that each printed the answer to its own question.
fn expect_own_answers(askers: Vec<(String, Child)>) {
    for (question, child) in askers {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{question}: {}", text(&out.stderr));
        let answer = text(&out.stdout);
        let got = body(answer.strip_prefix("ECHO: ").expect("an echo answer"));
        assert_eq!(got.trim_end(), question, "an asker got another's answer");
    }
}

/// The history's events per message id, in order.
fn events_by_id(m: &Mesh) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for e in m.history() {
        out.entry(e["id"].as_str().unwrap().to_string())
            .or_default()
            .push(e["event"].as_str().unwrap().to_string());
    }
    out
}

/// Each agent received the messages addressed to it, in id (queue) order, each once.
fn check_served_in_order(m: &Mesh, agents: &[Agent]) {
    let msgs = records(&m.home);
    let mut seen = HashSet::new();
    for a in agents {
        let ids: Vec<String> = a.prompts().iter().map(|p| prompt_id(p)).collect();
        for id in &ids {
            assert!(seen.insert(id.clone()), "{id} was typed twice");
            assert_eq!(
                msgs[id]["to"],
                a.name.as_str(),
                "{id} went to the wrong peer"
            );
        }
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "{} was not served in queue order", a.name);
    }
}

/// Every message record (open or finished) by id.
fn records(home: &Path) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    for dir in ["queue", "done"] {
        for e in std::fs::read_dir(home.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                out.insert(v["id"].as_str().unwrap().to_string(), v);
            }
        }
    }
    out
}

#[test]
fn twenty_concurrent_askers_to_one_peer_each_get_their_own_answer() {
    need_tmux!();
    let m = Mesh::new();
    let b = m.agent("beta", &[]);
    let askers: Vec<(String, Child)> = (0..20)
        .map(|i| {
            let q = format!("question {i} of 20");
            let child = spawn_piped(
                m.cmd()
                    .args(["peer", "ask", "beta", &q, "--timeout", "300s"]),
            );
            (q, child)
        })
        .collect();
    expect_own_answers(askers);
    assert_eq!(b.prompts().len(), 20);
    check_served_in_order(&m, std::slice::from_ref(&b));
    let events = events_by_id(&m);
    assert_eq!(events.len(), 20);
    for (id, ev) in &events {
        assert_eq!(ev, &["sent", "delivered", "answered"], "{id}");
    }
}

#[test]
fn ten_peers_each_asked_by_ten_askers_at_once() {
    need_tmux!();
    let m = Mesh::new();
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let agents: Vec<Agent> = names.iter().map(|n| m.agent(n, &[])).collect();
    let mut askers = Vec::new();
    for i in 0..10 {
        for n in &names {
            let q = format!("question {i} to {n}");
            let child = spawn_piped(m.cmd().args(["peer", "ask", n, &q, "--timeout", "300s"]));
            askers.push((q, child));
        }
    }
    expect_own_answers(askers);
    for a in &agents {
        assert_eq!(a.prompts().len(), 10, "{}", a.name);
        for p in a.prompts() {
            assert!(body(&p).ends_with(&format!("to {}", a.name)), "{p}");
        }
    }
    check_served_in_order(&m, &agents);
    let events = events_by_id(&m);
    assert_eq!(events.len(), 100);
    for (id, ev) in &events {
        assert_eq!(ev, &["sent", "delivered", "answered"], "{id}");
    }
}

/// Rounds of traffic: in each, every peer is asked by a person and notified by another peer,
/// and every fifth round one peer broadcasts. Then every message must have arrived exactly
/// once where it was sent, every asker have its own answer, and `gc` leave a small spool.
#[test]
fn soak_loses_duplicates_and_misroutes_nothing() {
    need_tmux!();
    let rounds: usize = std::env::var("REPOWIRE_SOAK")
        .ok()
        .map(|s| s.parse().expect("REPOWIRE_SOAK is a number of rounds"))
        .unwrap_or(4);
    let m = Mesh::new();
    let names: Vec<String> = (0..4).map(|i| format!("s{i}")).collect();
    let agents: Vec<Agent> = names.iter().map(|n| m.agent(n, &[])).collect();
    let panes: Vec<String> = names.iter().map(|n| m.pane(n)).collect();
    let (at_start, _) = spool_size(&m.home, false);
    let start = Instant::now();
    // What each agent must receive: message bodies, as multisets per agent.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let (mut asks, mut notes, mut broadcasts) = (0, 0, 0);
    for r in 0..rounds {
        let mut askers = Vec::new();
        let mut others = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let q = format!("soak {r} ask {n}");
            askers.push((
                q.clone(),
                spawn_piped(m.cmd().args(["peer", "ask", n, &q, "--timeout", "300s"])),
            ));
            expected.entry(n.clone()).or_default().push(q);
            let from = (i + 1) % names.len();
            let note = format!("soak {r} note {} to {n}", names[from]);
            others.push(spawn_piped(
                m.cmd_in(&panes[from]).args(["peer", "notify", n, &note]),
            ));
            expected.entry(n.clone()).or_default().push(note);
            asks += 1;
            notes += 1;
        }
        if r % 5 == 0 {
            let all = format!("soak {r} broadcast from s0");
            others.push(spawn_piped(m.cmd_in(&panes[0]).args([
                "peer",
                "broadcast",
                &all,
            ])));
            for n in &names[1..] {
                expected.entry(n.clone()).or_default().push(all.clone());
            }
            broadcasts += 1;
        }
        for c in others {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        expect_own_answers(askers);
    }
    for a in &agents {
        let want = expected[&a.name].len();
        assert!(
            m.eventually(T, || a.prompts().len() >= want),
            "{} got {} of {want}",
            a.name,
            a.prompts().len()
        );
    }
    m.helpers_done(); // nothing more may arrive
    for a in &agents {
        let mut got: Vec<String> = a.prompts().iter().map(|p| body(p).to_string()).collect();
        let mut want = expected[&a.name].clone();
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "{} lost, duplicated or misrouted messages",
            a.name
        );
    }
    check_served_in_order(&m, &agents);
    let events = events_by_id(&m);
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(events.len(), total);
    for (id, ev) in &events {
        let want = if ev.contains(&"answered".to_string()) {
            ["sent", "delivered", "answered"]
        } else {
            ["sent", "delivered", "received"]
        };
        assert_eq!(ev, &want, "{id}");
    }
    let took = start.elapsed();

    let out = m.ok(["gc", "--older-than", "1ms"]);
    let (files, bytes) = spool_size(&m.home, false);
    let (log_files, log_bytes) = spool_size(&m.home.join("log"), true);
    eprintln!(
        "soak: {rounds} rounds, {asks} asks, {notes} notifications, {broadcasts} broadcasts ({total} deliveries) in {took:.1?}; after gc: {files} files, {bytes} bytes besides the history ({log_files} files, {log_bytes} bytes); gc: {}",
        out.trim()
    );
    // Bounded: what is left does not depend on the traffic. Besides what the peers'
    // registration made, only lock files: each peer's delivery lock, the send and log locks.
    assert!(
        files <= at_start + names.len() + 2,
        "{files} files left after gc, {at_start} before any traffic"
    );
    for dir in ["done", "responses", "tmp"] {
        assert_eq!(
            std::fs::read_dir(m.home.join(dir)).unwrap().count(),
            0,
            "{dir}"
        );
    }
}

/// Files and bytes below `dir`: the history's `*.jsonl` only, or everything else.
fn spool_size(dir: &Path, history: bool) -> (usize, u64) {
    let (mut files, mut bytes) = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                todo.push(e.path());
                continue;
            }
            let is_log = e.path().extension().is_some_and(|x| x == "jsonl");
            if is_log == history {
                files += 1;
                bytes += md.len();
            }
        }
    }
    (files, bytes)
}
