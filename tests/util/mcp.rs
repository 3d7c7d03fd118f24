//! A client of `repowire mcp` over real pipes, for the tests that speak to the MCP server.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Mesh;

/// How long a reply is waited for.
pub const T: Duration = Duration::from_secs(20);
/// The protocol version Claude Code 2.1.330 asks for in `initialize`.
pub const PROTOCOL: &str = "2025-11-25";

/// A `repowire mcp` process spoken to over its stdin and stdout. Every line it writes must be
/// a JSON-RPC message: a reader thread checks each one and keeps them in order.
pub(crate) struct Mcp {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: Receiver<Value>,
    /// Everything received so far, in order.
    pub got: Vec<Value>,
    /// Its stdout has ended.
    pub closed: bool,
    pub next_id: u64,
    /// Where its stderr goes, for failure messages.
    pub stderr: PathBuf,
}

impl Mcp {
    /// Starts `repowire mcp` as `cmd` would run repowire (its spool, its pane), and
    /// initializes it as Claude Code does.
    pub(crate) fn start(m: &Mesh, mut cmd: Command) -> Mcp {
        cmd.arg("mcp");
        let mut mcp = Mcp::spawn(m, cmd);
        let id = mcp.request(
            "initialize",
            json!({"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "repowire-test", "version": "0"}}),
        );
        let r = mcp.response(id);
        assert_eq!(r["result"]["protocolVersion"], PROTOCOL, "{r}");
        mcp.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        mcp
    }

    /// Runs `cmd` (a `repowire mcp`, or what starts one) with pipes, uninitialized.
    pub fn spawn(m: &Mesh, mut cmd: Command) -> Mcp {
        static N: AtomicUsize = AtomicUsize::new(0);
        let stderr = m
            .dir
            .path()
            .join(format!("mcp{}.stderr", N.fetch_add(1, Ordering::Relaxed)));
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v = serde_json::from_str::<Value>(&line)
                    .ok()
                    .filter(|v| v["jsonrpc"] == "2.0")
                    .unwrap_or_else(|| json!({"not_protocol": line}));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Mcp {
            stdin: child.stdin.take(),
            child,
            lines,
            got: Vec::new(),
            closed: false,
            next_id: 100,
            stderr,
        }
    }

    pub fn send(&mut self, v: Value) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    pub fn request(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Starts a tool call carrying a progress token, as Claude Code's calls do.
    pub(crate) fn call_start(&mut self, tool: &str, args: Value) -> u64 {
        let id = self.next_id + 1;
        self.request(
            "tools/call",
            json!({"name": tool, "arguments": args, "_meta": {"progressToken": id}}),
        )
    }

    /// Waits for the first message that `f` accepts, among those received so far and to come.
    pub(crate) fn wait_for(
        &mut self,
        timeout: Duration,
        f: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let end = Instant::now() + timeout;
        let mut seen = 0;
        loop {
            if let Some(v) = self.got[seen..].iter().find(|v| f(v)) {
                return Some(v.clone());
            }
            seen = self.got.len();
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    assert!(v.get("not_protocol").is_none(), "not MCP on stdout: {v}");
                    self.got.push(v);
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    pub fn response(&mut self, id: u64) -> Value {
        let is_it =
            |v: &Value| v["id"] == id && (v.get("result").is_some() || v.get("error").is_some());
        self.wait_for(T, is_it).unwrap_or_else(|| {
            panic!(
                "no response to request {id}; got {:?}; stderr: {}",
                self.got,
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            )
        })
    }

    /// The text and isError of a tool call's result.
    pub(crate) fn result(&mut self, id: u64) -> (String, bool) {
        let r = self.response(id);
        let result = &r["result"];
        assert!(
            result.is_object(),
            "a JSON-RPC error, not a tool result: {r}"
        );
        let text = result["content"][0]["text"].as_str().unwrap_or_default();
        (text.to_string(), result["isError"] == true)
    }

    pub(crate) fn call(&mut self, tool: &str, args: Value) -> (String, bool) {
        let id = self.call_start(tool, args);
        self.result(id)
    }

    /// A call that must succeed: its text.
    pub(crate) fn ok(&mut self, tool: &str, args: Value) -> String {
        let (text, error) = self.call(tool, args);
        assert!(!error, "{tool} failed: {text}");
        text
    }

    /// The messages of the progress notifications for call `id` so far.
    pub(crate) fn progress(&self, id: u64) -> Vec<String> {
        self.got
            .iter()
            .filter(|v| {
                v["method"] == "notifications/progress" && v["params"]["progressToken"] == id
            })
            .map(|v| {
                v["params"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// Waits for call `id` to report `message`, failing if the call ends first.
    pub(crate) fn wait_progress(&mut self, id: u64, message: &str) {
        let hit = |v: &Value| {
            (v["method"] == "notifications/progress"
                && v["params"]["progressToken"] == id
                && v["params"]["message"] == message)
                || v["id"] == id
        };
        match self.wait_for(T, hit) {
            Some(v) if v["id"] == id => panic!("call {id} ended before {message:?}: {v}"),
            Some(_) => {}
            None => panic!(
                "no progress {message:?} for call {id}: {:?}",
                self.progress(id)
            ),
        }
    }

    pub(crate) fn cancel(&mut self, id: u64) {
        self.send(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                         "params": {"requestId": id, "reason": "the user pressed Escape"}}),
        );
    }

    /// Whether the process has exited, waiting at most `timeout` for it.
    pub fn exited_within(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for Mcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The message record (in `done/` or `queue/`) whose text is `text`, once there is one.
pub(crate) fn message_with(m: &Mesh, text: &str) -> Value {
    let mut found = None;
    let there = m.eventually(T, || {
        found = ["done", "queue"].iter().find_map(|dir| {
            std::fs::read_dir(m.home.join(dir))
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .filter_map(|e| {
                    serde_json::from_slice::<Value>(&std::fs::read(e.path()).ok()?).ok()
                })
                .find(|v| v["text"] == text)
        });
        found.is_some()
    });
    assert!(there, "no message {text:?} in the spool");
    found.unwrap()
}

/// Where message `id` is: its state, from `done/` first.
pub(crate) fn state(m: &Mesh, id: &str) -> String {
    ["done", "queue"]
        .iter()
        .find_map(|dir| std::fs::read(m.home.join(format!("{dir}/{id}.json"))).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| v["state"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(crate) fn events_of(m: &Mesh, id: &str) -> Vec<String> {
    m.history()
        .iter()
        .filter(|e| e["id"] == id)
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect()
}
