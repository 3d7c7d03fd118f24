//! `repowire top`: the mesh at a glance, live, in the terminal. The peers (status, queue,
//! how long the current turn has run and what it answers), every open ask as `asker → peer`
//! with its age and state, and the latest messages, newest first.
//!
//! It redraws when the spool changes (an inotify watch on `peers/`, `queue/` and `log/`) or
//! a key is pressed, and once a second only while something shown has an age that runs (a
//! busy peer, an open ask): with nothing happening it sleeps in the kernel. Where inotify
//! cannot watch, it looks every two seconds. ratatui restores the terminal on `q`, Ctrl-C
//! and on a panic.

use std::io::IsTerminal;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Result, bail};
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState};

use crate::history::{self, Entry, Kind};
use crate::message::{self, Message, State};
use crate::peer::{self, Status};
use crate::spool::Spool;
use crate::time::now_ms;
use crate::wait::Watch;

/// How often ages are redrawn while something has one.
const TICK: Duration = Duration::from_secs(1);
/// How often the spool is looked at where it cannot be watched.
const POLL: Duration = Duration::from_secs(2);
/// How much of the newest history file is read for the latest messages.
const HISTORY_TAIL: u64 = 64 * 1024;
const LATEST: usize = 50;

pub fn run(spool: &Spool) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "repowire top needs a terminal; for scripts, `repowire peer list --json` lists the peers and `repowire log --follow --json` follows the messages"
        );
    }
    enum Ev {
        Spool,
        Input(Event),
    }
    let (tx, rx) = mpsc::channel();
    let watch = Watch::new(&[spool.path("peers"), spool.path("queue"), spool.path("log")]);
    let polling = watch.is_polling();
    if !polling {
        let tx = tx.clone();
        std::thread::spawn(
            move || {
                while watch.next_change() && tx.send(Ev::Spool).is_ok() {}
            },
        );
    }
    std::thread::spawn(move || {
        while let Ok(e) = event::read() {
            if tx.send(Ev::Input(e)).is_err() {
                break;
            }
        }
    });

    let mut terminal = ratatui::init();
    let mut ui = Ui::default();
    let result = (|| -> Result<()> {
        let mut view = View::read(spool)?;
        loop {
            terminal.draw(|f| ui.draw(f, &view))?;
            let wait = if polling {
                Some(POLL)
            } else if view.ticking() {
                Some(TICK)
            } else {
                None
            };
            let ev = match wait {
                Some(d) => match rx.recv_timeout(d) {
                    Ok(ev) => Some(ev),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match rx.recv() {
                    Ok(ev) => Some(ev),
                    Err(_) => return Ok(()),
                },
            };
            match ev {
                Some(Ev::Input(Event::Key(k))) if k.kind != KeyEventKind::Release => {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if ctrl_c || ui.key(k.code, view.peers.len()) {
                        return Ok(());
                    }
                }
                Some(Ev::Input(_)) => {} // a resize: the next draw fits it
                Some(Ev::Spool) | None => view = View::read(spool)?,
            }
        }
    })();
    ratatui::restore();
    result
}

/// One peer as shown.
struct PeerRow {
    name: String,
    agent: String,
    /// How it is reached (`inbox`, `tmux`, `fork`).
    via: String,
    status: Status,
    queued: usize,
    /// When the running turn started.
    turn_since: Option<u64>,
    /// The question the running turn answers: `FROM: first line`.
    answering: Option<String>,
}

/// An open ask.
struct WaitRow {
    id: String,
    from: String,
    to: String,
    created_ms: u64,
    /// queued, delivered, or answering (delivered, and its peer's turn is on it).
    state: &'static str,
}

/// What the spool holds right now, as shown.
struct View {
    now_ms: u64,
    peers: Vec<PeerRow>,
    waits: Vec<WaitRow>,
    open: Vec<Message>,
    /// Newest first.
    latest: Vec<Entry>,
}

impl View {
    fn read(spool: &Spool) -> Result<View> {
        let peers = peer::all(spool)?;
        let panes = peer::live_panes(&peers);
        let open = message::open_messages(spool)?;
        let rows = peers
            .iter()
            .map(|p| {
                let status = peer::status_of(p, &panes).0;
                let busy = status == Status::Busy;
                let answering = p
                    .turn
                    .message
                    .as_ref()
                    .filter(|_| busy)
                    .and_then(|id| open.iter().find(|m| &m.id == id))
                    .map(|m| format!("{}: {}", m.from, first_line(&m.text)));
                PeerRow {
                    name: p.name.clone(),
                    agent: p.agent.name().to_string(),
                    via: p.transport().to_string(),
                    status,
                    queued: open.iter().filter(|m| m.to == p.name).count(),
                    turn_since: busy.then_some(p.turn.since_ms),
                    answering,
                }
            })
            .collect();
        let waits = open
            .iter()
            .filter(|m| m.kind == Kind::Ask)
            .map(|m| WaitRow {
                id: m.id.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                created_ms: m.created_ms,
                state: match m.state {
                    State::Queued => "queued",
                    State::Delivered
                        if peers
                            .iter()
                            .any(|p| p.name == m.to && p.turn.message.as_ref() == Some(&m.id)) =>
                    {
                        "answering"
                    }
                    _ => "delivered",
                },
            })
            .collect();
        Ok(View {
            now_ms: now_ms(),
            peers: rows,
            waits,
            open,
            latest: latest(spool),
        })
    }

    /// Whether an age on screen runs (a busy peer's turn, an open ask).
    fn ticking(&self) -> bool {
        !self.waits.is_empty() || self.peers.iter().any(|p| p.turn_since.is_some())
    }

    fn age(&self, since_ms: u64) -> String {
        let s = self.now_ms.saturating_sub(since_ms) / 1000;
        match s {
            0..60 => format!("{s}s"),
            60..3600 => format!("{}m{:02}s", s / 60, s % 60),
            _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        }
    }
}

/// The latest history entries, newest first, from the end of the newest file(s).
fn latest(spool: &Spool) -> Vec<Entry> {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = Vec::new();
    for path in history::files(spool).unwrap_or_default().iter().rev() {
        let Ok(mut f) = crate::spool::open_private(path, std::fs::OpenOptions::new().read(true))
        else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(HISTORY_TAIL);
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        // A line cut by where the read started is not whole.
        let lines = text.lines().skip(usize::from(start > 0));
        let mut entries: Vec<Entry> = lines.filter_map(|l| serde_json::from_str(l).ok()).collect();
        entries.reverse();
        out.extend(entries);
        if out.len() >= LATEST || start > 0 {
            break;
        }
    }
    out.truncate(LATEST);
    out
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
}

/// What the person has chosen to look at.
#[derive(Default)]
struct Ui {
    table: TableState,
    /// The selected peer's queue and history, over the rest.
    detail: bool,
    help: bool,
}

impl Ui {
    /// Handles a key; true when it quits.
    fn key(&mut self, code: KeyCode, peers: usize) -> bool {
        match code {
            KeyCode::Char('q') => return true,
            KeyCode::Esc if self.help || self.detail => {
                self.help = false;
                self.detail = false;
            }
            KeyCode::Esc => return true,
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Enter if peers > 0 => {
                self.detail = !self.detail;
                if self.table.selected().is_none() {
                    self.table.select(Some(0));
                }
            }
            KeyCode::Down | KeyCode::Char('j') if peers > 0 => {
                let next = self.table.selected().map_or(0, |i| (i + 1).min(peers - 1));
                self.table.select(Some(next));
            }
            KeyCode::Up | KeyCode::Char('k') if peers > 0 => {
                let prev = self.table.selected().map_or(0, |i| i.saturating_sub(1));
                self.table.select(Some(prev));
            }
            _ => {}
        }
        false
    }

    fn draw(&mut self, f: &mut Frame, v: &View) {
        let [title, peers, waits, latest, keys] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Percentage(40),
            Constraint::Percentage(25),
            Constraint::Fill(1),
            Constraint::Length(1),
        ])
        .areas(f.area());
        let busy = v.peers.iter().filter(|p| p.status == Status::Busy).count();
        f.render_widget(
            Line::from(format!(
                "repowire top  {} peers, {busy} busy, {} open asks",
                v.peers.len(),
                v.waits.len()
            ))
            .style(Style::new().add_modifier(Modifier::BOLD)),
            title,
        );
        self.draw_peers(f, peers, v);
        draw_waits(f, waits, v);
        let lines: Vec<Line> = v.latest.iter().map(entry_line).collect();
        f.render_widget(
            Paragraph::new(lines).block(Block::bordered().title(" latest ")),
            latest,
        );
        f.render_widget(
            Line::from("q quit  ↑↓ select  Enter queue and history  ? help")
                .style(Style::new().fg(Color::DarkGray)),
            keys,
        );
        if self.detail
            && let Some(p) = self.table.selected().and_then(|i| v.peers.get(i))
        {
            draw_detail(f, popup(f.area(), 90, 80), v, &p.name);
        }
        if self.help {
            let area = popup(f.area(), 70, 60);
            f.render_widget(Clear, area);
            f.render_widget(
                Paragraph::new(vec![
                    Line::from("q, Esc, Ctrl-C   quit"),
                    Line::from("↑ ↓ (k j)        select a peer"),
                    Line::from("Enter            the peer's queue and recent history"),
                    Line::from("?                this help"),
                    Line::from(""),
                    Line::from("STATUS: online (idle), busy (a turn runs), offline."),
                    Line::from("TURN: how long the running turn has run."),
                    Line::from("open asks: asker → peer, queued / delivered / answering."),
                ])
                .block(Block::bordered().title(" help ")),
                area,
            );
        }
    }

    fn draw_peers(&mut self, f: &mut Frame, area: Rect, v: &View) {
        let rows = v.peers.iter().map(|p| {
            let color = match p.status {
                Status::Online => Color::Green,
                Status::Busy => Color::Yellow,
                Status::Offline => Color::DarkGray,
            };
            Row::new(vec![
                Cell::from(p.name.clone()),
                Cell::from(p.agent.clone()),
                Cell::from(p.via.clone()),
                Cell::from(p.status.as_str()).style(Style::new().fg(color)),
                Cell::from(p.queued.to_string()),
                Cell::from(p.turn_since.map(|t| v.age(t)).unwrap_or_default()),
                Cell::from(p.answering.clone().unwrap_or_default()),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(8),
                Constraint::Length(5),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(7),
                Constraint::Fill(1),
            ],
        )
        .header(
            Row::new([
                "NAME",
                "AGENT",
                "VIA",
                "STATUS",
                "QUEUE",
                "TURN",
                "ANSWERING",
            ])
            .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(Block::bordered().title(" peers "));
        f.render_stateful_widget(table, area, &mut self.table);
    }
}

fn draw_waits(f: &mut Frame, area: Rect, v: &View) {
    let lines: Vec<Line> = if v.waits.is_empty() {
        vec![Line::from("nobody waits").style(Style::new().fg(Color::DarkGray))]
    } else {
        v.waits
            .iter()
            .map(|w| {
                Line::from(vec![
                    Span::raw(format!("{} → {}", w.from, w.to)),
                    Span::raw(format!("  {:>6}  ", v.age(w.created_ms))),
                    Span::styled(w.state, Style::new().fg(Color::Yellow)),
                    Span::styled(format!("  {}", w.id), Style::new().fg(Color::DarkGray)),
                ])
            })
            .collect()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" open asks ")),
        area,
    );
}

fn entry_line(e: &Entry) -> Line<'static> {
    let (y, mo, d) = crate::time::civil_date(e.ts_ms);
    let when = crate::time::format_utc(e.ts_ms);
    let today = crate::time::civil_date(now_ms()) == (y, mo, d);
    let when = if today { when[11..].to_string() } else { when };
    let event = serde_json::to_value(e.event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    // An answer goes from the peer that was asked (`to`) back to the asker (`from`).
    let (a, b) = match e.event {
        history::Event::Answered => (&e.to, &e.from),
        _ => (&e.from, &e.to),
    };
    let what = e
        .text
        .as_deref()
        .or(e.error.as_deref())
        .map(|t| format!(": {}", first_line(t)))
        .unwrap_or_default();
    Line::from(format!("{when}  {event:9}  {a} → {b}{what}"))
}

fn draw_detail(f: &mut Frame, area: Rect, v: &View, name: &str) {
    f.render_widget(Clear, area);
    let mut lines = vec![Line::from("queue:").style(Style::new().add_modifier(Modifier::BOLD))];
    let queue: Vec<&Message> = v.open.iter().filter(|m| m.to == name).collect();
    if queue.is_empty() {
        lines.push(Line::from("  empty"));
    }
    for m in queue {
        let state = serde_json::to_value(m.state)
            .ok()
            .and_then(|s| s.as_str().map(str::to_string))
            .unwrap_or_default();
        lines.push(Line::from(format!(
            "  {}  {} from {}  {}  {}",
            m.id,
            state,
            m.from,
            v.age(m.created_ms),
            first_line(&m.text)
        )));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("recent:").style(Style::new().add_modifier(Modifier::BOLD)));
    for e in v
        .latest
        .iter()
        .filter(|e| e.from == name || e.to == name)
        .take(20)
    {
        lines.push(entry_line(e));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(format!(" {name} (Enter closes) "))),
        area,
    );
}

/// A rectangle of `w`% by `h`% in the middle of `area`.
fn popup(area: Rect, w: u16, h: u16) -> Rect {
    let [_, mid, _] = Layout::vertical([
        Constraint::Percentage((100 - h) / 2),
        Constraint::Percentage(h),
        Constraint::Fill(1),
    ])
    .areas(area);
    let [_, mid, _] = Layout::horizontal([
        Constraint::Percentage((100 - w) / 2),
        Constraint::Percentage(w),
        Constraint::Fill(1),
    ])
    .areas(mid);
    mid
}
