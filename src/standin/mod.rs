//! The stand-in agent: a tiny terminal program that behaves like the Claude
//! Code TUI (2.1.330) wherever repowire depends on that behaviour, so the
//! integration tests and `repowire demo` can drive a real tmux pane without a
//! real model.
//!
//! What it promises, as measured on Claude Code:
//!
//! - Hooks run as `<exe> hook <event>` with the JSON payload on stdin, output
//!   discarded, environment inherited, one at a time and to completion:
//!   `session-start` once ready, `prompt` on each submitted turn, `stop` when
//!   a turn answers (not when it is interrupted), `session-end` on `/exit`
//!   (reason `prompt_input_exit`) or on EOF, SIGHUP or SIGTERM (reason
//!   `other`). `<exe>` is the current executable, or
//!   `$REPOWIRE_STANDIN_HOOK_EXE` when set (for testing this module alone).
//! - A single read of 64 bytes or more is a paste, as is anything between
//!   bracketed-paste markers: a CR inside it is a newline and never submits.
//!   Otherwise CR submits, LF is a newline, Ctrl-C clears the input and
//!   interrupts, a lone ESC interrupts, other CSI sequences are ignored.
//! - A turn answers `ECHO: <prompt>`, or `<rest>` when a line of the prompt is
//!   `REPLY <rest>`; a line `SLEEP <seconds>` keeps it busy that long. A
//!   prompt submitted while busy is queued: its `prompt` hook fires at once
//!   with the running turn's `prompt_id`, and it runs as its own turn after
//!   the running one stops. An interrupt drops the queue. A line `KILL_STOP_HOOK` makes
//!   the turn's Stop hook die at once by SIGKILL, before it can store anything (as a hook
//!   killed by the OOM killer or a timeout would).
//! - `/…` is a slash command (only `/exit` does anything); `!cmd` really runs
//!   `sh -c cmd`, so tests can see an injected command by its side effect.
//! - The transcript is `$REPOWIRE_STANDIN_DIR/<session_id>.jsonl` (default: a
//!   `repowire-standin` folder in the temp dir), in Claude Code's line shape.
//! - With `--events FILE`, every input event is appended to FILE as one JSON
//!   line `{"ts_ms","type","text"}`, written with a single `write()` after the
//!   hooks it triggers have returned, so a test can wait for an event and
//!   then check the hooks. Types: `start` (with `pane`, `session_id`,
//!   `transcript_path`), `prompt` (with `queued` when queued), `answer`,
//!   `slash`, `bang`, `escape`, `ctrl-c` (text: the discarded input),
//!   `interrupted` (text: the interrupted prompt), `csi` (text such as
//!   `ESC[A`) and `exit` (text: the session-end reason).
//! - With `--inbox`, it serves an inbox as Claude Code does (see `inbox`): a message posted
//!   to it starts a turn of its own, its `prompt` hook's `prompt` the text exactly, whatever
//!   is typed in the prompt box; posted during a turn, it runs as its own turn after it
//!   (its hook fires then). Events: `inbox` (text: the message) and `inbox-refused`.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use ulid::Ulid;

mod inbox;
mod terminal;

use terminal::{HANGUP, TERMINATED, Terminal, catch_hangup, out, read_input, terminal_width};

pub struct Options {
    pub events: Option<PathBuf>,
    /// Serve an inbox like Claude Code's (see `inbox`).
    pub inbox: bool,
    pub no_last_message: bool,
    /// Keep running when the terminal hangs up, until SIGTERM (as Gemini CLI can).
    pub outlive_pane: bool,
}

/// Claude Code takes any single read at least this long for a paste.
const PASTE_MIN: usize = 64;
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";
/// An unfinished CSI sequence longer than this is garbage, not a split read.
const CSI_MAX: usize = 32;
/// Short enough that SLEEP timers and signals are noticed promptly.
const POLL_MS: libc::c_int = 50;
const CR: u8 = b'\r';
const LF: u8 = b'\n';
const ESC: u8 = 0x1b;
const CTRL_C: u8 = 0x03;

const EXIT_BY_PROMPT: &str = "prompt_input_exit";
const EXIT_OTHER: &str = "other";

pub fn run(opts: &Options) -> Result<()> {
    let mut agent = Agent::new(opts)?;
    let _terminal = Terminal::enter()?;
    catch_hangup().context("installing signal handlers")?;
    agent.start()?;
    let reason = agent.serve()?;
    agent.end(reason)
}

struct Turn {
    prompt_id: String,
    text: String,
    answer: String,
    due: Instant,
}

struct Agent {
    hook_exe: PathBuf,
    session_id: String,
    transcript: PathBuf,
    cwd: String,
    pane: String,
    events: Option<File>,
    no_last_message: bool,
    outlive_pane: bool,
    input: Vec<u8>,
    /// Inside `ESC[200~ … ESC[201~`, which may span reads.
    bracketed: bool,
    /// The start of an escape sequence cut off at the end of a read.
    carry: Vec<u8>,
    turn: Option<Turn>,
    /// Prompts that run after the current turn, each with whether its `prompt` hook is still
    /// to fire (an inbox message's fires when its turn starts, a typed one's when typed).
    queued: VecDeque<(String, bool)>,
    inbox: Option<inbox::Inbox>,
    quit: bool,
    /// Whether the prompt box is on screen (its three lines end at the cursor).
    box_drawn: std::cell::Cell<bool>,
}

impl Agent {
    fn new(opts: &Options) -> Result<Self> {
        let hook_exe = match std::env::var_os("REPOWIRE_STANDIN_HOOK_EXE") {
            Some(exe) => PathBuf::from(exe),
            None => std::env::current_exe().context("locating the repowire binary")?,
        };
        let dir = std::env::var_os("REPOWIRE_STANDIN_DIR").map_or_else(
            || std::env::temp_dir().join("repowire-standin"),
            PathBuf::from,
        );
        // Private, as Claude Code keeps its transcripts.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating transcript folder {}", dir.display()))?;
        let session_id = new_id();
        let events = match &opts.events {
            Some(path) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(path)
                    .with_context(|| format!("opening events file {}", path.display()))?,
            ),
            None => None,
        };
        let cwd = std::env::current_dir()?.to_string_lossy().into_owned();
        let inbox = match opts.inbox {
            true => Some(inbox::Inbox::open(&dir, &session_id, &cwd)?),
            false => None,
        };
        Ok(Self {
            hook_exe,
            transcript: dir.join(format!("{session_id}.jsonl")),
            session_id,
            cwd,
            inbox,
            pane: std::env::var("TMUX_PANE").unwrap_or_else(|_| "?".to_owned()),
            events,
            no_last_message: opts.no_last_message,
            outlive_pane: opts.outlive_pane,
            input: Vec::new(),
            bracketed: false,
            carry: Vec::new(),
            turn: None,
            queued: VecDeque::new(),
            quit: false,
            box_drawn: std::cell::Cell::new(false),
        })
    }

    fn start(&self) -> Result<()> {
        out(&format!(
            "stand-in agent (pane {}) — type a prompt, Enter submits\r\n",
            self.pane
        ));
        self.hook(
            "session-start",
            "SessionStart",
            json!({"source": "startup", "model": "standin"}),
        );
        self.draw_input();
        self.record(json!({
            "type": "start",
            "text": "",
            "pane": self.pane,
            "session_id": self.session_id,
            "transcript_path": self.transcript.to_string_lossy(),
        }))
    }

    /// Runs until the session should end, and says why.
    fn serve(&mut self) -> Result<&'static str> {
        let mut buf = [0u8; 4096];
        loop {
            if self.quit {
                return Ok(EXIT_BY_PROMPT);
            }
            if TERMINATED.load(Ordering::SeqCst)
                || HANGUP.load(Ordering::SeqCst) && !self.outlive_pane
            {
                return Ok(EXIT_OTHER);
            }
            self.finish_due_turns()?;
            let inbox = self.inbox.as_ref().map(inbox::Inbox::fd);
            let (read, posted) = read_input(&mut buf, inbox).context("reading the terminal")?;
            if posted {
                self.take_inbox()?;
            }
            match read {
                Some(0) if self.outlive_pane => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Some(0) => return Ok(EXIT_OTHER),
                Some(n) => self.feed(&buf[..n])?,
                None => {}
            }
        }
    }

    fn end(&self, reason: &str) -> Result<()> {
        self.hook("session-end", "SessionEnd", json!({"reason": reason}));
        out("\r\n");
        self.record(json!({"type": "exit", "text": reason}))
    }

    /// Takes one read's worth of input. Its size matters: Claude Code types
    /// a long read into the input wholesale, even a CR in it.
    fn feed(&mut self, data: &[u8]) -> Result<()> {
        let pasted = data.len() >= PASTE_MIN;
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        let mut i = 0;
        while i < bytes.len() && !self.quit {
            let rest = &bytes[i..];
            if rest.starts_with(PASTE_START) || rest.starts_with(PASTE_END) {
                self.bracketed = rest.starts_with(PASTE_START);
                i += PASTE_START.len(); // both markers are six bytes
            } else if self.cut_short(rest) {
                self.carry = rest.to_vec();
                break;
            } else if pasted || self.bracketed {
                self.input.push(if rest[0] == CR { LF } else { rest[0] });
                i += 1;
            } else {
                i += self.key(rest)?;
            }
        }
        self.draw_input();
        Ok(())
    }

    /// Whether `rest` (the end of what was read) may be the start of an
    /// escape sequence whose remainder is still to be read.
    fn cut_short(&self, rest: &[u8]) -> bool {
        if self.bracketed {
            return rest.len() < PASTE_END.len() && PASTE_END.starts_with(rest);
        }
        rest.len() < CSI_MAX
            && rest.starts_with(b"\x1b[")
            && rest[2..].iter().all(|b| (0x20..=0x3f).contains(b))
    }

    /// Handles one typed key at the start of `rest`; returns the bytes used.
    fn key(&mut self, rest: &[u8]) -> Result<usize> {
        match rest[0] {
            CR => self.submit()?,
            0x7f | 0x08 => {
                // Drop a whole UTF-8 character, not just its last byte.
                while let Some(b) = self.input.pop() {
                    if b & 0xc0 != 0x80 {
                        break;
                    }
                }
            }
            CTRL_C => {
                let discarded = std::mem::take(&mut self.input);
                let text = String::from_utf8_lossy(&discarded);
                self.record(json!({"type": "ctrl-c", "text": text}))?;
                self.interrupt()?;
            }
            ESC if rest.get(1) == Some(&b'[') => {
                let len = csi_len(rest);
                let text = format!("ESC{}", String::from_utf8_lossy(&rest[1..len]));
                self.record(json!({"type": "csi", "text": text}))?;
                return Ok(len);
            }
            ESC => {
                self.record(json!({"type": "escape", "text": ""}))?;
                self.interrupt()?;
            }
            b => self.input.push(b),
        }
        Ok(1)
    }

    fn submit(&mut self) -> Result<()> {
        let text = String::from_utf8_lossy(&self.input).trim_end().to_owned();
        if text.is_empty() {
            return Ok(());
        }
        self.input.clear();
        if text.starts_with('/') {
            self.slash(&text)
        } else if let Some(command) = text.strip_prefix('!') {
            self.bang(&text, command)
        } else if let Some(prompt_id) = self.turn.as_ref().map(|t| t.prompt_id.clone()) {
            self.prompt_hook(&prompt_id, &text);
            self.say("  queued: ", &text);
            self.record(json!({"type": "prompt", "text": text, "queued": true}))?;
            self.queued.push_back((text, false));
            Ok(())
        } else {
            self.begin_turn(text, true)
        }
    }

    fn slash(&mut self, text: &str) -> Result<()> {
        self.say("❯ ", text);
        self.record(json!({"type": "slash", "text": text}))?;
        self.quit = text.split_whitespace().next() == Some("/exit");
        Ok(())
    }

    fn bang(&mut self, text: &str, command: &str) -> Result<()> {
        self.say("! ", command);
        // Runs in the foreground, like the hooks: input waits in the tty.
        let ran = Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .output();
        match ran {
            Ok(output) => {
                let mut shown = String::from_utf8_lossy(&output.stdout).into_owned();
                shown.push_str(&String::from_utf8_lossy(&output.stderr));
                if !shown.trim().is_empty() {
                    self.say("  ⎿ ", shown.trim_end());
                }
            }
            Err(e) => self.say("  ⎿ ", &format!("cannot run sh: {e}")),
        }
        self.record(json!({"type": "bang", "text": text}))
    }

    /// Starts a turn on `text`; `submitted` is false for a queued prompt,
    /// whose `prompt` hook already fired when it was typed.
    fn begin_turn(&mut self, text: String, submitted: bool) -> Result<()> {
        let prompt_id = new_id();
        if submitted {
            self.prompt_hook(&prompt_id, &text);
        }
        self.append_transcript(&prompt_id, json!(text))?;
        if submitted {
            self.record(json!({"type": "prompt", "text": text}))?;
        }
        self.say("❯ ", &text);
        let (answer, delay) = plan(&text);
        if !delay.is_zero() {
            self.say("  ", &format!("working for {delay:?} (Esc to interrupt)"));
        }
        self.turn = Some(Turn {
            prompt_id,
            text,
            answer,
            due: Instant::now() + delay,
        });
        Ok(())
    }

    fn finish_due_turns(&mut self) -> Result<()> {
        while let Some(turn) = self.turn.take_if(|t| t.due <= Instant::now()) {
            self.append_line(&json!({
                "type": "assistant",
                "message": {
                    "id": format!("msg_{}", new_id()),
                    "role": "assistant",
                    "content": [{"type": "text", "text": turn.answer}],
                    "stop_reason": "end_turn",
                },
                "uuid": new_uuid(),
                "sessionId": self.session_id,
                "timestamp": rfc3339(SystemTime::now()),
            }))?;
            let mut payload = json!({
                "prompt_id": turn.prompt_id,
                "permission_mode": "default",
                "stop_hook_active": false,
                "background_tasks": [],
                "session_crons": [],
            });
            if !self.no_last_message {
                payload["last_assistant_message"] = json!(turn.answer);
            }
            if turn.text.lines().any(|l| l.trim() == "KILL_STOP_HOOK") {
                self.hook_killed("stop");
            } else {
                self.hook("stop", "Stop", payload);
            }
            self.record(json!({"type": "answer", "text": turn.answer}))?;
            self.say("● ", &turn.answer);
            if let Some((next, hook)) = self.queued.pop_front() {
                self.begin_turn(next, hook)?;
            }
        }
        Ok(())
    }

    /// Claude Code stops an interrupted turn without a Stop hook.
    fn interrupt(&mut self) -> Result<()> {
        let Some(turn) = self.turn.take() else {
            return Ok(());
        };
        // Typed prompts go with it; messages from the inbox wait for their turn.
        self.queued.retain(|(_, hook)| *hook);
        self.append_transcript(&turn.prompt_id, json!("[Request interrupted by user]"))?;
        self.record(json!({"type": "interrupted", "text": turn.text}))?;
        self.say("  ⎿ ", "Interrupted");
        match self.queued.pop_front() {
            Some((next, hook)) => self.begin_turn(next, hook),
            None => Ok(()),
        }
    }

    /// Takes what was posted to the inbox: each message a turn of its own, now or after the
    /// running one (and those queued before it).
    fn take_inbox(&mut self) -> Result<()> {
        let arrived = self
            .inbox
            .as_ref()
            .map(inbox::Inbox::take)
            .unwrap_or_default();
        for a in arrived {
            match a {
                inbox::Arrived::Message(text) => {
                    self.record(json!({"type": "inbox", "text": text}))?;
                    if self.turn.is_some() {
                        self.queued.push_back((text, true));
                    } else {
                        self.begin_turn(text, true)?;
                    }
                }
                inbox::Arrived::Refused(why) => {
                    self.record(json!({"type": "inbox-refused", "text": why}))?;
                }
            }
        }
        self.draw_input();
        Ok(())
    }

    fn prompt_hook(&self, prompt_id: &str, text: &str) {
        self.hook(
            "prompt",
            "UserPromptSubmit",
            json!({"prompt_id": prompt_id, "permission_mode": "default", "prompt": text}),
        );
    }

    /// Runs a hook the way Claude Code does. A failing hook does not stop
    /// Claude Code, so it only gets a line on screen here.
    fn hook(&self, event: &str, hook_event_name: &str, extra: Value) {
        let mut payload = json!({
            "session_id": self.session_id,
            "transcript_path": self.transcript.to_string_lossy(),
            "cwd": self.cwd,
            "hook_event_name": hook_event_name,
        });
        if let (Some(all), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            all.extend(extra);
        }
        if let Err(e) = run_hook(&self.hook_exe, event, &payload, &self.hook_env()) {
            self.say("  ", &format!("hook {event} failed: {e:#}"));
        }
    }

    /// What its hooks get in their environment besides its own: the inbox's variables.
    fn hook_env(&self) -> Vec<(&'static str, String)> {
        self.inbox
            .as_ref()
            .map(|i| i.env().to_vec())
            .unwrap_or_default()
    }

    /// Starts a hook and SIGKILLs it at once.
    fn hook_killed(&self, event: &str) {
        let child = Command::new(&self.hook_exe)
            .args(["hook", event])
            .envs(self.hook_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Ok(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.say("  ", &format!("hook {event} killed"));
    }

    fn append_transcript(&self, prompt_id: &str, content: Value) -> Result<()> {
        self.append_line(&json!({
            "type": "user",
            "message": {"role": "user", "content": content},
            "promptId": prompt_id,
            "sessionId": self.session_id,
            "uuid": new_uuid(),
            "timestamp": rfc3339(SystemTime::now()),
            "cwd": self.cwd,
        }))
    }

    fn append_line(&self, line: &Value) -> Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.transcript)
            .with_context(|| format!("opening transcript {}", self.transcript.display()))?;
        write_line(&file, line).context("writing the transcript")
    }

    fn record(&self, mut event: Value) -> Result<()> {
        let Some(file) = &self.events else {
            return Ok(());
        };
        event["ts_ms"] = json!(unix_ms(SystemTime::now()));
        write_line(file, &event).context("writing the events file")
    }

    /// Prints `body` after `marker`, in place of the input line, which is
    /// then drawn again below it.
    fn say(&self, marker: &str, body: &str) {
        let indent = " ".repeat(marker.chars().count());
        let lines: Vec<String> = body
            .split('\n')
            .map(|line| line.chars().map(visible).collect())
            .collect();
        self.erase_input();
        out(&format!(
            "{marker}{}\r\n",
            lines.join(&format!("\r\n{indent}"))
        ));
        self.draw_input();
    }

    /// Removes the prompt box, so output can take its place.
    fn erase_input(&self) {
        if self.box_drawn.replace(false) {
            out("\x1b[2A\r\x1b[J");
        }
    }

    /// Draws the prompt box as Claude Code does, a `❯` line between two rules, which is what
    /// repowire reads to tell an empty box from a draft.
    fn draw_input(&self) {
        let text: String = String::from_utf8_lossy(&self.input)
            .chars()
            .map(|c| if c == '\n' { '↵' } else { visible(c) })
            .collect();
        // One screen row, so redrawing never leaves wrapped leftovers.
        let width = terminal_width().saturating_sub(1).max(12);
        let room = width.saturating_sub(3);
        let len = text.chars().count();
        let shown = if len > room {
            format!("…{}", text.chars().skip(len + 1 - room).collect::<String>())
        } else {
            text
        };
        let rule = "─".repeat(width);
        self.erase_input();
        out(&format!("{rule}\r\n❯ {shown}\r\n{rule}"));
        self.box_drawn.set(true);
    }
}

/// What a turn on `text` answers, and how long it stays busy first.
fn plan(text: &str) -> (String, Duration) {
    let answer = text
        .lines()
        .find_map(|line| line.strip_prefix("REPLY "))
        .map_or_else(|| format!("ECHO: {text}"), str::to_owned);
    let delay = text
        .lines()
        .find_map(|line| line.strip_prefix("SLEEP ")?.trim().parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .unwrap_or_default();
    (answer, delay)
}

/// Length of the CSI sequence at the start of `seq` (which begins `ESC [`):
/// parameter and intermediate bytes, then one final byte if there is one.
fn csi_len(seq: &[u8]) -> usize {
    let body = seq[2..]
        .iter()
        .take_while(|b| (0x20..=0x3f).contains(*b))
        .count();
    let end = 2 + body;
    match seq.get(end) {
        Some(0x40..=0x7e) => end + 1,
        _ => end,
    }
}

fn run_hook(exe: &Path, event: &str, payload: &Value, env: &[(&str, String)]) -> Result<()> {
    let mut child = Command::new(exe)
        .args(["hook", event])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(payload.to_string().as_bytes()),
        None => Ok(()),
    };
    let status = child.wait()?;
    match written {
        // A hook may exit without reading its input; its status tells.
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => {
            anyhow::ensure!(status.success(), "{status}");
            Ok(())
        }
    }
}

fn write_line(mut file: &File, value: &Value) -> io::Result<()> {
    let mut line = value.to_string();
    line.push('\n');
    // O_APPEND and one write per line: a reader never sees half a line.
    file.write_all(line.as_bytes())
}

/// Never lets a control character reach the terminal.
fn visible(c: char) -> char {
    match c {
        '\x00'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap_or('�'),
        '\x7f' => '␡',
        c if c.is_control() => '�',
        c => c,
    }
}

fn new_id() -> String {
    Ulid::generate().to_string().to_lowercase()
}

/// Claude Code's `uuid` fields are UUID-shaped; a ULID's 128 bits will do.
fn new_uuid() -> String {
    let v = Ulid::generate().0;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}

fn unix_ms(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// UTC, millisecond precision, as Claude Code writes transcript timestamps.
fn rfc3339(t: SystemTime) -> String {
    let ms = unix_ms(t);
    let secs = ms / 1000;
    let (days, day_secs) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u128::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        day_secs / 3600,
        day_secs / 60 % 60,
        day_secs % 60,
        ms % 1000
    )
}
