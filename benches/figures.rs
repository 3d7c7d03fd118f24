//! `cargo bench --bench figures`: measures the figures of the performance table in README.md
//! and prints each with its median and spread, then the table.
//!
//! Everything runs the release binary for real: hooks with Claude Code's payloads on stdin,
//! `repowire mcp` over pipes, `peer list` and `peer ask` against stand-in agents in a private
//! tmux server (a socket in a temporary directory, never the user's server), on a temporary
//! spool; and forks of a Claude Code session against the fake model API (see `fork`).
//! `cargo bench --bench figures -- quick` takes fewer samples and skips the 500 MB
//! transcript; naming groups (`hooks`, `mcp`, `mesh`, `inbox`, `claude`, `fork`) runs only those.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use repowire::agents::Agent;
use repowire::message::{self, Draft, Kind, Message, State};
use repowire::peer::{self, Peer, Turn};
use repowire::process::Process;
use repowire::spool::Spool;
use repowire::time::now_ms;
use serde_json::{Value, json};

#[path = "figures/fork.rs"]
mod fork;
#[path = "figures/claude.rs"]
mod real_claude;
// The tests' own harness, the Claude Code driver among it, for the real-client rows.
#[path = "../tests/util/mod.rs"]
#[allow(dead_code)]
mod util;
use util::claude_code;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_repowire"))
}

/// Samples of one figure, in milliseconds (or MB for memory).
struct Samples(Vec<f64>);

impl Samples {
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        let i = ((v.len() - 1) as f64 * p).round() as usize;
        v[i]
    }
    fn median(&self) -> f64 {
        self.pct(0.5)
    }
    fn spread(&self, unit: &str) -> String {
        format!(
            "p10 {:.2} · p90 {:.2} · max {:.2} {unit} (n={})",
            self.pct(0.1),
            self.pct(0.9),
            self.pct(1.0),
            self.0.len()
        )
    }
}

struct Row {
    figure: String,
    target: String,
    result: String,
    spread: String,
}

struct Bench {
    rows: Vec<Row>,
    quick: bool,
}

impl Bench {
    fn row(&mut self, figure: &str, target: &str, result: String, spread: String) {
        println!("{figure}: {result}  [{spread}]  (target {target})");
        self.rows.push(Row {
            figure: figure.into(),
            target: target.into(),
            result,
            spread,
        });
    }
    fn n(&self, full: usize) -> usize {
        if self.quick { full / 5 } else { full }
    }
}

/// A temporary spool and a private tmux server.
struct World {
    dir: tempfile::TempDir,
    spool: Spool,
    socket: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("rwbench")
            .tempdir()
            .unwrap();
        let spool = Spool::open(&dir.path().join("spool")).unwrap();
        let socket = dir.path().join("tmux.sock");
        World { dir, spool, socket }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("tmux must be installed");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `repowire` on this spool, as a person at a terminal outside tmux.
    fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("REPOWIRE_HOME", self.spool.root())
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::null());
        c
    }

    /// A window running `sleep` (a pane a peer can live in), and its pane id.
    fn idle_pane(&self, name: &str) -> String {
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-P",
            "-F",
            "#{pane_id}",
            "sleep",
            "100000",
        ])
    }

    /// A peer record for `pane`, online and idle, as the SessionStart hook would write it
    /// (the pane's process is its agent).
    fn peer(&self, name: &str, pane: &str) -> Peer {
        let now = now_ms();
        let pid: u32 = self
            .tmux(&["display-message", "-p", "-t", pane, "#{pane_pid}"])
            .parse()
            .unwrap();
        let start = repowire::process::Process::of(pid).unwrap().start;
        let p = Peer {
            name: name.into(),
            agent: Agent::default(),
            tmux_socket: self.socket.clone(),
            pane: pane.into(),
            path: self.dir.path().to_path_buf(),
            session_id: Some(format!("session-{name}")),
            agent_command: Some("sleep".into()),
            agent_process: Some(Process { pid, start }),
            pinned: false,
            description: Some("the users and orders API".into()),
            described: true,
            online: true,
            registered_ms: now,
            started_ms: now,
            last_activity_ms: now,
            turn: Turn::default(),
            queued_turns: vec![],
            transport: None,
            no_inbox: None,
            transcript: None,
        };
        peer::save_with_pane(&self.spool, &p).unwrap();
        p
    }

    /// A stand-in agent named `name` (its working directory's name), ready to take prompts;
    /// `extra`: more arguments (`--inbox`).
    fn standin(&self, name: &str, extra: &[&str]) {
        let work = self.dir.path().join(name);
        std::fs::create_dir_all(&work).unwrap();
        self.tmux(
            &[
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                "160",
                "-y",
                "40",
                "-c",
                &work.display().to_string(),
                "-e",
                &format!("REPOWIRE_HOME={}", self.spool.root().display()),
                "-e",
                &format!(
                    "REPOWIRE_STANDIN_DIR={}",
                    self.dir.path().join("transcripts").display()
                ),
                "-e",
                &format!(
                    "CLAUDE_CONFIG_DIR={}",
                    self.dir.path().join("claude").display()
                ),
                &bin().display().to_string(),
                "standin",
            ]
            .into_iter()
            .chain(extra.iter().copied())
            .collect::<Vec<&str>>(),
        );
        let end = Instant::now() + Duration::from_secs(10);
        while !peer::load(&self.spool, name)
            .unwrap()
            .is_some_and(|p| p.online)
        {
            assert!(Instant::now() < end, "stand-in {name} did not register");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill();
    }
}

/// CPU time used by this benchmark and everything it starts (the tmux server, the stand-ins,
/// their hooks, the deliverers), in ms: a cgroup v1 `cpuacct` group of its own, where one can
/// be made (as root). Daemons and `setsid` do not leave a cgroup.
struct Cpu(Option<PathBuf>);

impl Cpu {
    fn join() -> Cpu {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/cpuacct/repowire-bench-{}",
            std::process::id()
        ));
        let ok = std::fs::create_dir(&dir).is_ok()
            && std::fs::write(dir.join("tasks"), std::process::id().to_string()).is_ok();
        Cpu(ok.then_some(dir))
    }
    fn used_ms(&self) -> Option<f64> {
        let dir = self.0.as_ref()?;
        let ns: f64 = std::fs::read_to_string(dir.join("cpuacct.usage"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(ns / 1e6)
    }
}

impl Drop for Cpu {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            // Back to the root group, so the group can go.
            let _ = std::fs::write(
                "/sys/fs/cgroup/cpuacct/tasks",
                std::process::id().to_string(),
            );
            // The tmux servers it started may take a moment to exit and leave it.
            for _ in 0..50 {
                if std::fs::remove_dir(dir).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Runs `cmd` with `stdin` as its standard input; returns its wall time (ms) and peak RSS (MB).
///
/// Linux counts the memory of the process that spawned a program into the program's peak RSS
/// (vfork and fork share or copy it until exec), so the figure is taken by a fresh, small copy
/// of this benchmark (`--spawn`), which runs the command with the input piped in as an agent
/// would, and reports what `wait4` says.
fn measured(cmd: &mut Command, stdin: &[u8]) -> (f64, f64) {
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), stdin).unwrap();
    let mut spawner = Command::new(std::env::current_exe().unwrap());
    spawner
        .arg("--spawn")
        .arg(input.path())
        .arg(cmd.get_program());
    spawner.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => spawner.env(k, v),
            None => spawner.env_remove(k),
        };
    }
    let out = spawner.stdin(Stdio::null()).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.is_empty(),
        "{cmd:?}: {report} {err}"
    );
    let mut f = report.split_whitespace().map(|x| x.parse::<f64>().unwrap());
    let (wall, kb) = (f.next().unwrap(), f.next().unwrap());
    (wall, kb / 1024.0)
}

/// `--spawn INPUT PROGRAM ARGS…`: runs PROGRAM with INPUT piped to its stdin, fails if it
/// fails or writes to stderr, else prints its wall time in ms and its peak RSS in KiB.
#[allow(clippy::zombie_processes)] // reaped by wait4, which std cannot see
fn spawn_and_report(args: &[String]) {
    let payload = std::fs::File::open(&args[0]).unwrap();
    let start = Instant::now();
    let mut child = Command::new(&args[1])
        .args(&args[2..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_child = child.stdin.take().unwrap();
    // A hook that exits before reading all of it is its failure to report, not ours.
    let _ = std::io::copy(&mut std::io::BufReader::new(payload), &mut to_child);
    drop(to_child);
    let (status, rss_kb) = wait4(&child);
    let wall = start.elapsed().as_secs_f64() * 1000.0;
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
    if status != 0 || !err.is_empty() {
        eprintln!("exit status {status}, stderr: {err}");
        std::process::exit(1);
    }
    println!("{wall} {rss_kb}");
}

/// Waits for `child`; returns its exit status and peak resident set in KiB.
fn wait4(child: &Child) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; the pid is our own unwaited child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, child.id() as i32, "wait4 failed");
    // Linux counts `ru_maxrss` in KiB, macOS in bytes.
    let kib = if cfg!(target_os = "macos") {
        usage.ru_maxrss / 1024
    } else {
        usage.ru_maxrss
    };
    (libc::WEXITSTATUS(status), kib)
}

/// The Stop payload Claude Code sends (samples/hook_examples.json), with or without the answer.
fn stop_payload(w: &World, prompt_id: &str, answer: Option<&str>, transcript: &Path) -> Vec<u8> {
    let mut p = json!({
        "session_id": "session-b",
        "transcript_path": transcript,
        "cwd": w.dir.path(),
        "permission_mode": "bypassPermissions",
        "hook_event_name": "Stop",
        "stop_hook_active": false,
        "prompt_id": prompt_id,
    });
    if let Some(a) = answer {
        p["last_assistant_message"] = json!(a);
    }
    serde_json::to_vec(&p).unwrap()
}

/// A hook as Claude Code runs it in peer `b`'s pane.
fn hook(w: &World, pane: &str, event: &str) -> Command {
    let mut c = w.cmd();
    c.args(["hook", event])
        .env("TMUX", format!("{},1,0", w.socket.display()))
        .env("TMUX_PANE", pane);
    c
}

/// Puts a question to `b` in the state a Stop hook finds it in: delivered, and its turn
/// started by the prompt hook (run for real). Returns the message and the prompt id.
fn pending_question(w: &World, pane: &str, i: usize) -> (Message, String) {
    let (m, _waiter) = message::send(
        &w.spool,
        &Draft {
            kind: Kind::Ask,
            from: "user",
            to: "b",
            text: &format!("question {i}"),
            deadline_ms: None,
            chain: &[],
            fork: false,
        },
    )
    .unwrap();
    message::update(&w.spool, "b", &m.id, |m| {
        m.state = State::Delivered;
        true
    })
    .unwrap();
    let prompt_id = format!("prompt-{i}");
    let payload = json!({
        "session_id": "session-b",
        "hook_event_name": "UserPromptSubmit",
        "prompt": message::prompt_text(&m),
        "prompt_id": prompt_id,
    });
    measured(
        &mut hook(w, pane, "prompt"),
        &serde_json::to_vec(&payload).unwrap(),
    );
    (m, prompt_id)
}

fn answered(w: &World, id: &str) -> String {
    let m = message::load(&w.spool, id).unwrap().unwrap();
    assert_eq!(m.state, State::Answered, "question {id} not answered");
    message::load_response(&w.spool, id).unwrap().unwrap().text
}

/// A transcript of about `size` bytes in Claude Code's line shape, whose last turn answers
/// `answer` (one text block after a tool call, as a real turn ends).
fn transcript(path: &Path, size: u64, answer: &str) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0u64;
    let mut turn = 0u64;
    while written < size {
        turn += 1;
        let lines = [
            json!({"type":"user","uuid":format!("u{turn}"),"sessionId":"session-b","promptId":format!("p{turn}"),"message":{"role":"user","content":format!("prompt {turn}: explain the users API")}}),
            json!({"type":"assistant","uuid":format!("a{turn}"),"sessionId":"session-b","message":{"id":format!("msg_{turn}"),"role":"assistant","content":[{"type":"tool_use","id":format!("t{turn}"),"name":"Read","input":{"file_path":"src/api/users.rs"}}]}}),
            json!({"type":"user","uuid":format!("r{turn}"),"sessionId":"session-b","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":format!("t{turn}"),"content":"x".repeat(2000)}]}}),
            json!({"type":"assistant","uuid":format!("b{turn}"),"sessionId":"session-b","message":{"id":format!("msg_{turn}b"),"role":"assistant","content":[{"type":"text","text":format!("answer {turn}: GET /api/users returns a list of users")}]}}),
        ];
        for l in lines {
            let s = serde_json::to_string(&l).unwrap();
            written += s.len() as u64 + 1;
            writeln!(f, "{s}").unwrap();
        }
    }
    let last = [
        json!({"type":"user","uuid":"last-u","sessionId":"session-b","promptId":"prompt-last","message":{"role":"user","content":"the question"}}),
        json!({"type":"assistant","uuid":"last-a","sessionId":"session-b","message":{"id":"msg_last","role":"assistant","content":[{"type":"text","text":answer}]}}),
    ];
    for l in last {
        writeln!(f, "{}", serde_json::to_string(&l).unwrap()).unwrap();
    }
    f.flush().unwrap();
}

fn hook_figures(b: &mut Bench) {
    let w = World::new();
    let pane = w.idle_pane("b");
    w.peer("b", &pane);
    let empty = w.dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();

    let mut rss: Vec<(String, f64)> = Vec::new();
    // Timed once the disk has caught up with the set-up, as below.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let mut stop = Vec::new();
    let mut prompt = Vec::new();
    // Its two floors, timed in turn with it so they see the same disk: the process alone (a
    // hook outside any peer starts, reads its payload, opens the spool and exits), and the
    // disk alone (three records of the sizes it writes, staged and fsynced at once).
    let (mut bare, mut disk) = (Vec::new(), Vec::new());
    let not_a_peer =
        serde_json::to_vec(&json!({"session_id": "nobody", "hook_event_name": "Stop"})).unwrap();
    for i in 0..b.n(200) {
        let t = Instant::now();
        let (m, pid) = pending_question(&w, &pane, i);
        prompt.push(t.elapsed().as_secs_f64() * 1000.0);
        let answer = format!("answer {i}");
        let (ms, mb) = measured(
            &mut hook(&w, &pane, "stop"),
            &stop_payload(&w, &pid, Some(&answer), &empty),
        );
        assert_eq!(answered(&w, &m.id), answer);
        stop.push(ms);
        rss.push(("stop".into(), mb));
        bare.push(measured(w.cmd().args(["hook", "stop"]), &not_a_peer).0);
        let t = Instant::now();
        drop(
            w.spool
                .stage_all([&[b'a'; 250], &[b'd'; 350], &[b'p'; 550]])
                .unwrap(),
        );
        disk.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let s = Samples(stop);
    b.row(
        "`hook stop`, answer in the payload",
        "≤ 3 ms median",
        format!("{:.2} ms", s.median()),
        s.spread("ms"),
    );
    let (bare, disk) = (Samples(bare), Samples(disk));
    b.row(
        "floor of the line above: the process alone (`hook stop` outside any peer)",
        "(explains the line above)",
        format!("{:.2} ms", bare.median()),
        bare.spread("ms"),
    );
    b.row(
        "floor of the line above: the disk alone (its three records fsynced at once)",
        "(explains the line above)",
        format!("{:.2} ms", disk.median()),
        disk.spread("ms"),
    );

    let sizes: &[(u64, &str)] = if b.quick {
        &[(1 << 20, "1 MB"), (50 << 20, "50 MB")]
    } else {
        &[
            (1 << 20, "1 MB"),
            (50 << 20, "50 MB"),
            (500 << 20, "500 MB"),
        ]
    };
    for &(size, label) in sizes {
        let path = w.dir.path().join(format!("transcript-{size}.jsonl"));
        let answer = "the answer, from the end of the transcript";
        transcript(&path, size, answer);
        // Timed once the disk has it, not while it writes it back (which slows every fsync).
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        let mut times = Vec::new();
        for i in 0..b.n(100) {
            let (m, pid) = pending_question(&w, &pane, 10_000 + i);
            let (ms, mb) = measured(
                &mut hook(&w, &pane, "stop"),
                &stop_payload(&w, &pid, None, &path),
            );
            assert_eq!(answered(&w, &m.id), answer);
            times.push(ms);
            rss.push((format!("stop, {label} transcript"), mb));
        }
        std::fs::remove_file(&path).unwrap();
        let s = Samples(times);
        b.row(
            &format!("`hook stop`, answer from a {label} transcript"),
            "≤ 5 ms median",
            format!("{:.2} ms", s.median()),
            s.spread("ms"),
        );
    }

    // The other hooks, for their memory: a session starting in a fresh pane, and ending.
    for i in 0..b.n(50) {
        let pane = w.idle_pane(&format!("s{i}"));
        let start = json!({"session_id": format!("s{i}"), "hook_event_name": "SessionStart",
            "source": "startup", "cwd": w.dir.path(), "transcript_path": empty});
        let (_, mb) = measured(
            &mut hook(&w, &pane, "session-start"),
            &serde_json::to_vec(&start).unwrap(),
        );
        rss.push(("session-start".into(), mb));
        let end = json!({"session_id": format!("s{i}"), "hook_event_name": "SessionEnd",
            "reason": "prompt_input_exit"});
        let (_, mb) = measured(
            &mut hook(&w, &pane, "session-end"),
            &serde_json::to_vec(&end).unwrap(),
        );
        rss.push(("session-end".into(), mb));
    }
    // And a payload far over the size any hook keeps (it is read and dropped).
    let huge = vec![b'x'; 100 << 20];
    let (_, mb) = measured(&mut hook(&w, &pane, "stop"), &huge);
    rss.push(("stop, 100 MB of stdin".into(), mb));

    let (worst, max) = rss
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap();
    let all = Samples(rss.iter().map(|r| r.1).collect());
    b.row(
        "peak memory of any hook",
        "≤ 6 MB",
        format!("{max:.1} MB ({worst})"),
        format!("median {:.1} MB over every hook run above", all.median()),
    );
    let _ = prompt;
}

/// Spawns `repowire mcp` and returns it with the time (ms) to its `initialize` reply.
fn mcp_initialize(w: &World) -> (Child, BufReader<std::process::ChildStdout>, f64) {
    let start = Instant::now();
    let mut child = w
        .cmd()
        .arg("mcp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},
        "clientInfo":{"name":"bench","version":"0"}}});
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{init}").unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(v["result"]["serverInfo"].is_object(), "initialize: {line}");
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc":"2.0","method":"notifications/initialized"})
    )
    .unwrap();
    child.stdin = Some(stdin);
    (child, out, ms)
}

/// The resident memory of process `pid` now, in MB (`ps` says KiB on Linux and macOS alike).
fn rss_mb(pid: u32) -> f64 {
    let out = Command::new("ps")
        .args(["-o", "rss=", "-p", &pid.to_string()])
        .output()
        .unwrap();
    let kb: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    kb / 1024.0
}

fn mcp_figures(b: &mut Bench) {
    let w = World::new();
    let mut times = Vec::new();
    let mut idle = Vec::new();
    for i in 0..b.n(50) {
        let (mut child, mut out, ms) = mcp_initialize(&w);
        times.push(ms);
        if i < 10 {
            // Idle after a session's usual start: the tool list, then nothing.
            let stdin = child.stdin.as_mut().unwrap();
            writeln!(
                stdin,
                "{}",
                json!({"jsonrpc":"2.0","id":2,"method":"tools/list"})
            )
            .unwrap();
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            idle.push(rss_mb(child.id()));
        }
        drop(child.stdin.take());
        child.wait().unwrap();
    }
    let s = Samples(times);
    b.row(
        "`repowire mcp`: spawn to the `initialize` reply",
        "≤ 10 ms median",
        format!("{:.2} ms", s.median()),
        s.spread("ms"),
    );
    let s = Samples(idle);
    b.row(
        "`repowire mcp` idle memory (RSS)",
        "≤ 8 MB",
        format!("{:.1} MB", s.median()),
        s.spread("MB"),
    );
}

/// `peer list` times (ms) over `n` runs.
fn list_times(w: &World, n: usize) -> Samples {
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let out = w.cmd().args(["peer", "list"]).output().unwrap();
        assert!(out.status.success());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Samples(times)
}

/// `peer ask` round trips (ms) to stand-in `to`, checking each answer.
fn ask_times(w: &World, to: &str, n: usize) -> Samples {
    let mut times = Vec::new();
    for i in 0..n {
        let q = format!("question {i} to {to}");
        let t = Instant::now();
        let out = w.cmd().args(["peer", "ask", to, &q]).output().unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_echoed(&out, &q);
    }
    Samples(times)
}

/// `peer ask` succeeded with the stand-in's echo of `q`.
fn assert_echoed(out: &std::process::Output, q: &str) {
    assert!(
        out.status.success(),
        "{q}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.starts_with("ECHO: ") && answer.trim_end().ends_with(q),
        "{answer}"
    );
}

/// Fills the spool with `n` finished messages, their answers and their history, as months
/// of use without `gc` would (written directly: this is the setup, not the figure).
fn fill_history(w: &World, n: usize) {
    let root = w.spool.root();
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(root.join("log").join("2026-01-01.jsonl")).unwrap(),
    );
    let base = now_ms() - 30 * 24 * 3600 * 1000;
    for i in 0..n {
        let id = ulid::Ulid::from_parts(base + i as u64, i as u128).to_string();
        let m = Message {
            id: id.clone(),
            kind: Kind::Ask,
            from: "frontend".into(),
            to: format!("p{}", i % 10),
            text: format!("past question {i}"),
            created_ms: base + i as u64,
            deadline_ms: None,
            asker_pid: None,
            state: State::Answered,
            delivered_ms: Some(base + i as u64),
            finished_ms: Some(base + i as u64),
            error: None,
            chain: Vec::new(),
            fork: false,
        };
        std::fs::write(
            root.join("done").join(format!("{id}.json")),
            serde_json::to_vec_pretty(&m).unwrap(),
        )
        .unwrap();
        let r = json!({"id": id, "from": m.to, "to": "frontend", "text": format!("past answer {i}"),
            "created_ms": base + i as u64});
        std::fs::write(
            root.join("responses").join(format!("{id}.json")),
            serde_json::to_vec_pretty(&r).unwrap(),
        )
        .unwrap();
        for event in ["sent", "delivered", "answered"] {
            writeln!(
                log,
                "{}",
                json!({"ts_ms": base + i as u64, "event": event, "id": id, "kind": "ask",
                    "from": "frontend", "to": m.to, "text": m.text})
            )
            .unwrap();
        }
    }
}

fn mesh_figures(b: &mut Bench, cpu: &Cpu) {
    let w = World::new();
    for i in 0..200 {
        let pane = w.idle_pane(&format!("w{i}"));
        w.peer(&format!("peer{i:03}"), &pane);
    }
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    for n in &names {
        w.standin(n, &[]);
    }
    // Past the stand-ins' start-up grace, so every ask finds them ready.
    std::thread::sleep(Duration::from_secs(2));
    ask_times(&w, "p0", 3);

    let list = list_times(&w, b.n(50));
    b.row(
        "`peer list`, 200 registered peers (+10 stand-ins)",
        "≤ 15 ms median",
        format!("{:.2} ms", list.median()),
        list.spread("ms"),
    );
    flight_rows(b, cpu, &w, &names, "tmux");

    // The same mesh again, on a spool that holds 100,000 past messages; then both are timed
    // in turns, so a slower moment of the machine weighs on both alike.
    let full = World::new();
    for i in 0..200 {
        let pane = full.idle_pane(&format!("w{i}"));
        full.peer(&format!("peer{i:03}"), &pane);
    }
    for n in &names {
        full.standin(n, &[]);
    }
    fill_history(&full, 100_000);
    // Timed once the disk has those files, not while it writes them back.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_secs(2));
    ask_times(&full, "p0", 3);
    let (mut list_e, mut list_f, mut ask_e, mut ask_f) = (vec![], vec![], vec![], vec![]);
    for i in 0..b.n(50) {
        // Each takes its turn first: the one after an ask runs beside the end of its Stop hook.
        let order = if i % 2 == 0 { [&w, &full] } else { [&full, &w] };
        for world in order {
            let list = list_times(world, 1).0;
            let ask = ask_times(world, "p0", 1).0;
            let empty = std::ptr::eq(world, &w);
            (if empty { &mut list_e } else { &mut list_f }).extend(list);
            (if empty { &mut ask_e } else { &mut ask_f }).extend(ask);
        }
    }
    let compare = |full: &Samples, empty: &Samples| {
        format!(
            "{:.1} ms, empty {:.1} ms ({:+.1}%)",
            full.median(),
            empty.median(),
            (full.median() / empty.median() - 1.0) * 100.0
        )
    };
    let (list_e, list_f, ask_e, ask_f) = (
        Samples(list_e),
        Samples(list_f),
        Samples(ask_e),
        Samples(ask_f),
    );
    b.row(
        "`peer list` with 100,000 past messages (timed in turns with an empty spool)",
        "within 10% of an empty spool",
        compare(&list_f, &list_e),
        list_f.spread("ms"),
    );
    b.row(
        "`peer ask` with 100,000 past messages (timed in turns with an empty spool)",
        "within 10% of an empty spool",
        compare(&ask_f, &ask_e),
        ask_f.spread("ms"),
    );
}

/// The rows of asks to the stand-ins `names` of `w`, reached `via` tmux or their inbox: one
/// ask at a time, the CPU each costs, and 100 at once.
fn flight_rows(b: &mut Bench, cpu: &Cpu, w: &World, names: &[String], via: &str) {
    let cpu_before = cpu.used_ms();
    let ask = ask_times(w, "p0", b.n(50));
    let cpu_single = cpu_before
        .zip(cpu.used_ms())
        .map(|(a, z)| (z - a) / ask.0.len() as f64);
    b.row(
        &format!("ask overhead: `peer ask` to an idle stand-in ({via}), end to end"),
        "≤ 100 ms median, ≤ 250 ms p95",
        format!("{:.1} ms median, {:.1} ms p95", ask.median(), ask.pct(0.95)),
        ask.spread("ms"),
    );

    // 100 asks at once: 10 askers to each of 10 peers. A peer answers one at a time, so each
    // peer's 10 asks are served one after another: overhead per ask = wall time / 10.
    let cpu_before = cpu.used_ms();
    let start = Instant::now();
    let askers: Vec<(String, Child)> = (0..100)
        .map(|i| {
            let to = &names[i % 10];
            let q = format!("concurrent question {i} to {to}");
            let child = w
                .cmd()
                .args(["peer", "ask", to, &q])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (q, child)
        })
        .collect();
    for (q, child) in askers {
        assert_echoed(&child.wait_with_output().unwrap(), &q);
    }
    let wall = start.elapsed().as_secs_f64() * 1000.0;
    let per_ask = wall / 10.0;
    let cpu_concurrent = cpu_before.zip(cpu.used_ms()).map(|(a, z)| (z - a) / 100.0);
    if let (Some(single), Some(concurrent)) = (cpu_single, cpu_concurrent) {
        b.row(
            &format!(
                "CPU time per ask ({via}), all processes (asker, deliverer, hooks, stand-in{})",
                if via == "tmux" { ", tmux" } else { "" }
            ),
            if via == "inbox" {
                "≤ 10 ms"
            } else {
                "(explains the line above)"
            },
            format!("{single:.1} ms alone, {concurrent:.1} ms with 100 in flight"),
            format!(
                "{} CPUs: 100 asks need at least {:.0} ms",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                concurrent * 100.0
                    / std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
            ),
        );
    }
    b.row(
        &format!("100 asks in flight across 10 peers ({via})"),
        "all answered; per ask ≤ 2× the single ask",
        format!(
            "all 100 answered in {:.0} ms: {per_ask:.1} ms per ask, {:.2}× the single ask",
            wall,
            per_ask / ask.median()
        ),
        "one run".into(),
    );
}

/// The same asks to stand-ins that serve an inbox as Claude Code does, each outside tmux (its
/// input a pipe, its output dropped, as a session in a terminal tmux does not run): nothing is
/// typed and no tmux runs, so the CPU is the asker's, the deliverer's, the hooks' and the
/// stand-in's alone.
fn inbox_figures(b: &mut Bench, cpu: &Cpu) {
    let w = World::new();
    let names: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
    let mut standins: Vec<Child> = Vec::new();
    for n in &names {
        let work = w.dir.path().join(n);
        std::fs::create_dir_all(&work).unwrap();
        let child = Command::new(bin())
            .args(["standin", "--inbox"])
            .current_dir(&work)
            .env("REPOWIRE_HOME", w.spool.root())
            .env("CLAUDE_CONFIG_DIR", w.dir.path().join("claude"))
            .env("REPOWIRE_STANDIN_DIR", w.dir.path().join("transcripts"))
            .env_remove("TMUX")
            .env_remove("TMUX_PANE")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        standins.push(child);
        let end = Instant::now() + Duration::from_secs(10);
        while !peer::load(&w.spool, n).unwrap().is_some_and(|p| p.online) {
            assert!(Instant::now() < end, "stand-in {n} did not register");
            std::thread::sleep(Duration::from_millis(20));
        }
        let p = peer::load(&w.spool, n).unwrap().unwrap();
        assert_eq!(p.transport(), peer::Transport::Inbox, "{n}");
    }
    // Past the stand-ins' start-up grace, so every ask finds them ready.
    std::thread::sleep(Duration::from_secs(2));
    ask_times(&w, "p0", 3);
    flight_rows(b, cpu, &w, &names, "inbox");
    for mut c in standins {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--spawn") {
        return spawn_and_report(&argv[2..]);
    }
    // `cargo bench` passes `--bench`; anything else selects what to run.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let quick = args.iter().any(|a| a == "quick");
    let only: Vec<&String> = args.iter().filter(|a| *a != "quick").collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o.as_str() == name);
    let mut b = Bench {
        rows: vec![],
        quick,
    };
    let cpu = Cpu::join();
    let mut load = [0f64; 3];
    // SAFETY: `load` holds the three samples getloadavg writes.
    let got = unsafe { libc::getloadavg(load.as_mut_ptr(), 3) };
    println!(
        "repowire figures ({} CPUs, load average {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if got == 3 {
            format!("{:.2} {:.2} {:.2}", load[0], load[1], load[2])
        } else {
            "unknown".into()
        }
    );
    // Whatever ran before must not be written back while the figures are taken.
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    if want("hooks") {
        hook_figures(&mut b);
    }
    if want("mcp") {
        mcp_figures(&mut b);
    }
    if want("mesh") {
        mesh_figures(&mut b, &cpu);
    }
    if want("inbox") {
        inbox_figures(&mut b, &cpu);
    }
    if want("claude") {
        real_claude::claude_figures(&mut b);
    }
    if want("fork") {
        fork::fork_figures(&mut b);
    }
    let size = std::fs::metadata(bin()).unwrap().len();
    b.row(
        "release binary size",
        "stated",
        format!("{:.1} MB", size as f64 / 1e6),
        "stripped, thin LTO".into(),
    );

    println!("\n| figure | target | measured | spread |\n| --- | --- | --- | --- |");
    for r in &b.rows {
        println!(
            "| {} | {} | {} | {} |",
            r.figure, r.target, r.result, r.spread
        );
    }
}
