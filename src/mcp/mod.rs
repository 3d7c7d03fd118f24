//! `repowire mcp`: the MCP server (stdio, rmcp) that each agent session starts, so that its
//! agent uses the mesh as tools: list the peers, ask one and wait for the answer, fetch a late
//! answer, notify one or all, register a pane.
//!
//! What it promises:
//! - nothing but protocol on stdout;
//! - the caller is the peer of the pane the server runs in (`TMUX`, `TMUX_PANE`), looked up on
//!   every call, because the SessionStart hook may register it after the server started;
//!   outside tmux it is `user`;
//! - calls run concurrently: the spool and tmux work of each runs on the blocking pool, so a
//!   long `ask_peer` never holds up another call;
//! - a bad argument or a refused message (unknown peer, empty text, deadlock...) is a tool
//!   error with the library's message, never a protocol error or a crash;
//! - a cancelled `ask_peer` stops waiting within a tenth of a second and withdraws its
//!   question if the peer does not have it yet (see [`ask::wait_answer`]); when stdin closes
//!   or the parent dies, every wait is cancelled that way and the server exits;
//! - every line the client sends is answered: a line that is no JSON, or too long, gets a
//!   JSON-RPC error naming why (`lines`).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{DiscoverRequestMethod, DiscoverResult, ProgressNotificationParam};
// The `JsonSchema` derive names its crate `schemars`: rmcp's, so the versions match.
use rmcp::schemars::{self, JsonSchema};
use rmcp::service::{RequestContext, ServerInitializeError};
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::ask::{Checked, Progress};
use crate::config::Config;
use crate::error::Error;
use crate::fanout;
use crate::peer::{self, USER};
use crate::reach::{self, Target};
use crate::remote;
use crate::spool::Spool;

/// The longest wait a call may ask for; past it, `get_answer` is the way.
const MAX_TIMEOUT_SECS: u64 = 3600;
/// How often the server looks whether its parent (the agent) is still alive.
const PARENT_POLL: Duration = Duration::from_millis(200);

mod lines;

/// Serves MCP on stdin and stdout until stdin closes or the parent dies.
pub fn run(spool: Spool) -> Result<()> {
    // Cancelled when the client is gone: ends the service and, through it, every call.
    let closing = CancellationToken::new();
    watch_parent(closing.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let res = rt.block_on(async {
        let (input, output, pumps) = lines::start(closing.clone());
        let server = Server { spool };
        let res = match server.serve_with_ct((input, output), closing).await {
            Ok(service) => service
                .waiting()
                .await
                .map(drop)
                .context("the MCP server failed"),
            // Gone before it initialized (as `claude mcp list` may be): nothing to serve.
            Err(ServerInitializeError::ConnectionClosed(_) | ServerInitializeError::Cancelled) => {
                Ok(())
            }
            Err(e) => Err(anyhow!(e).context("MCP initialization failed")),
        };
        pumps.finish().await;
        res
    });
    // Every call has ended (rmcp waits for them); a read of stdin that never returns (the
    // parent died, another process holds the pipe) must not hold up the exit.
    rt.shutdown_background();
    res
}

/// Cancels `closing` when the parent process dies, even if stdin stays open (another process
/// may hold the pipe). Polled rather than `PR_SET_PDEATHSIG`, which fires when the parent
/// *thread* that started us exits: in a multi-threaded agent that is not its death.
fn watch_parent(closing: CancellationToken) {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        while std::os::unix::process::parent_id() == parent {
            std::thread::sleep(PARENT_POLL);
        }
        closing.cancel();
    });
}

#[derive(Clone)]
struct Server {
    spool: Spool,
}

#[derive(Deserialize, JsonSchema)]
struct AskArgs {
    /// A name from list_peers (NAME@HOST for another host)
    peer_name: String,
    /// The question, with the context the peer needs to answer it
    query: String,
    /// Give up after this long (default 300)
    timeout_seconds: Option<u64>,
    /// Answer at once from a read-only copy of the peer's session; it re-reads the session,
    /// costing tokens. For a busy or offline peer and a question on what it knows, not a
    /// request to act
    #[serde(default)]
    fork: bool,
}

#[derive(Deserialize, JsonSchema)]
struct AskManyArgs {
    /// Names from list_peers
    peer_names: Vec<String>,
    /// The question, with the context they need to answer it
    query: String,
    /// Give up after this long (default 300)
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
struct GetAnswerArgs {
    /// The query id from a timed-out ask_peer
    query_id: String,
}

#[derive(Deserialize, JsonSchema)]
struct NotifyArgs {
    /// A name from list_peers
    peer_name: String,
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct BroadcastArgs {
    message: String,
}

#[derive(Deserialize, JsonSchema)]
struct RegisterArgs {
    /// The peer name to give it
    name: String,
    /// The tmux session, window or pane it runs in (e.g. backend, %3)
    tmux_session: String,
    /// Its working directory
    path: String,
    /// One line on what it knows
    description: Option<String>,
}

#[tool_router]
impl Server {
    #[tool(
        description = "List the other agent sessions (peers) you can ask: name, status, agent, how it is reached (inbox, tmux, fork), repository path, what it knows. Marks you."
    )]
    async fn list_peers(&self) -> Result<String, String> {
        self.blocking(|spool| {
            let me = peer::sender_name(spool)?;
            let peers = peer::all(spool)?;
            let panes = peer::live_panes(&peers);
            let mut out = String::new();
            for p in &peers {
                let status = peer::status_of(p, &panes).0.as_str();
                let you = match (p.name == me, p.fork_only()) {
                    (true, _) => " (you)",
                    (_, true) => " (outside tmux, no inbox: answers by fork only)",
                    _ => "",
                };
                write!(
                    out,
                    "{}: {status}, {}, {}, {}{you}",
                    p.name,
                    p.agent,
                    p.transport(),
                    p.path.display()
                )?;
                match &p.description {
                    Some(d) => writeln!(out, " - {d}")?,
                    None => writeln!(out)?,
                }
            }
            let remotes = remote::list(&Config::load(spool)?.remotes);
            for r in &remotes {
                match &r.peers {
                    Ok(peers) => {
                        for p in peers {
                            let status = p.status.as_str();
                            write!(out, "{}@{}: {status}, {}", p.name, r.host, p.path.display())?;
                            match &p.description {
                                Some(d) => writeln!(out, " - {d}")?,
                                None => writeln!(out)?,
                            }
                        }
                    }
                    Err(e) => writeln!(out, "{}: unreachable: {e}", r.host)?,
                }
            }
            if peers.is_empty()
                && remotes
                    .iter()
                    .all(|r| r.peers.as_ref().is_ok_and(Vec::is_empty))
            {
                out.push_str("no peers yet\n");
            }
            if me == USER {
                out.push_str("(you are not a peer: your messages are sent as 'user')\n");
            }
            Ok(out)
        })
        .await
    }

    #[tool(
        description = "Ask another agent session a question; blocks until it answers. Use for context from another repository. Busy or offline peer: see fork."
    )]
    async fn ask_peer(
        &self,
        Parameters(a): Parameters<AskArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<String, String> {
        self.asking(ctx, move |spool, cancelled, stages| {
            ask_and_wait(spool, &a, cancelled, stages)
        })
        .await
    }

    #[tool(
        description = "Ask several peers the same question at once; returns each answer labelled with its peer, and why any did not answer."
    )]
    async fn ask_peers(
        &self,
        Parameters(a): Parameters<AskManyArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<String, String> {
        self.asking(ctx, move |spool, cancelled, stages| {
            ask_many(spool, &a, cancelled, stages)
        })
        .await
    }

    #[tool(
        description = "The answer to an earlier ask_peer (e.g. one that timed out), or where the question stands."
    )]
    async fn get_answer(&self, Parameters(a): Parameters<GetAnswerArgs>) -> Result<String, String> {
        self.blocking(move |spool| {
            let id = a.query_id.trim();
            Ok(match reach::check(spool, id)? {
                Checked::Answered(text) => text,
                Checked::Open { to, stage } => format!(
                    "not answered yet: query {id} to '{to}' is {stage}; call get_answer again later"
                ),
            })
        })
        .await
    }

    #[tool(description = "Send a peer a message that needs no answer; returns at once.")]
    async fn notify_peer(&self, Parameters(a): Parameters<NotifyArgs>) -> Result<String, String> {
        self.blocking(move |spool| {
            let target = Target::parse(&a.peer_name)?;
            Ok(reach::notify(spool, target, &a.message)?.to_string())
        })
        .await
    }

    #[tool(description = "Send a message to every online peer but you; returns at once.")]
    async fn broadcast(&self, Parameters(a): Parameters<BroadcastArgs>) -> Result<String, String> {
        self.blocking(move |spool| Ok(reach::broadcast(spool, &a.message, &[])?.0.to_string()))
            .await
    }

    #[tool(description = "Give the agent in a tmux pane a peer name (kept across its restarts).")]
    async fn register_peer(
        &self,
        Parameters(a): Parameters<RegisterArgs>,
    ) -> Result<String, String> {
        self.blocking(move |spool| {
            let p = peer::register(
                spool,
                &a.name,
                &a.tmux_session,
                Path::new(&a.path),
                a.description.as_deref(),
            )?;
            Ok(format!(
                "registered {} (pane {}, {})",
                p.name,
                p.pane,
                p.path.display()
            ))
        })
        .await
    }
}

/// Sends what arrives on `to_send` to the client as progress notifications, from a task of its
/// own and in order: a wait must never block on sending them (rmcp acknowledges a notification
/// only while it still reads stdin). `None` when the client asked for no progress.
fn progress_sender<P: std::fmt::Display + Send + 'static>(
    ctx: &RequestContext<RoleServer>,
    mut to_send: tokio::sync::mpsc::UnboundedReceiver<P>,
) -> Option<tokio::task::JoinHandle<()>> {
    let token = ctx.meta.get_progress_token()?;
    let client = ctx.peer.clone();
    Some(tokio::spawn(async move {
        let mut step = 0.0;
        while let Some(p) = to_send.recv().await {
            step += 1.0;
            let mut note = ProgressNotificationParam::new(token.clone(), step);
            note.message = Some(p.to_string());
            // A client that is gone is no error: the answer still lands in the spool.
            let _ = client.notify_progress(note).await;
        }
    }))
}

/// `ask_peers`'s work: the fan-out, each reply under `==> NAME <==` in the order they came.
fn ask_many(
    spool: &Spool,
    a: &AskManyArgs,
    cancelled: &dyn Fn() -> bool,
    stages: Option<UnboundedSender<String>>,
) -> Result<String> {
    if a.peer_names.is_empty() {
        return Err(Error::BadInput(
            "peer_names is empty: name the peers to ask (list_peers shows them)".into(),
        )
        .into());
    }
    let timeout = timeout_of(spool, a.timeout_seconds)?;
    let asked = a.peer_names.len();
    let mut answered = 0;
    let replies = fanout::ask(
        spool,
        &a.peer_names,
        &a.query,
        (timeout, false),
        Some(cancelled),
        &mut |r| {
            answered += usize::from(r.answer.is_ok());
            if let Some(stages) = &stages {
                let _ = stages.send(format!(
                    "{answered} of {asked} answered (latest: {})",
                    r.peer
                ));
            }
        },
    );
    if cancelled() {
        return Err(anyhow!(
            "cancelled; answers that come later are stored, and get_answer fetches them"
        ));
    }
    let mut out = String::new();
    for r in replies {
        match r.answer {
            Ok(text) => writeln!(out, "==> {} <==\n{}\n", r.peer, text.trim_end())?,
            Err(e) => writeln!(
                out,
                "==> {} (no answer) <==\n{:#}\n",
                r.peer,
                for_the_model(e)
            )?,
        }
    }
    Ok(out)
}

/// The timeout a call asked for, checked, or config.yaml's `mcp_ask_timeout`.
fn timeout_of(spool: &Spool, secs: Option<u64>) -> Result<Duration> {
    // Agent turns take minutes, and a question queued behind a busy peer's turn waits for
    // that turn too: the default (config.yaml's mcp_ask_timeout) is generous.
    let secs = match secs {
        Some(s) => s,
        None => Config::load(spool)?.mcp_ask_timeout.as_secs(),
    };
    if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
        return Err(Error::BadInput(format!(
            "timeout_seconds must be from 1 to {MAX_TIMEOUT_SECS}; for a longer wait, call get_answer after a timeout"
        ))
        .into());
    }
    Ok(Duration::from_secs(secs))
}

/// The library's timeout hint is a CLI command; for the model, the tool is the way.
fn for_the_model(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<Error>() {
        Some(Error::Timeout {
            peer,
            secs,
            id,
            pending: true,
            ..
        }) => anyhow!(
            "no answer from '{peer}' within {secs}s (query {id}); the peer has the question, and get_answer with this query id returns its answer once it comes"
        ),
        _ => e,
    }
}

/// `ask_peer`'s work: asks, waits until the answer, a timeout or `cancelled`, and sends each
/// new stage to `stages`.
fn ask_and_wait(
    spool: &Spool,
    a: &AskArgs,
    cancelled: &dyn Fn() -> bool,
    stages: Option<UnboundedSender<String>>,
) -> Result<String> {
    let timeout = timeout_of(spool, a.timeout_seconds)?;
    let mut last = None;
    let mut report = |p: Progress| {
        // The wait reports its stage at every check; the client hears of changes only.
        if last != Some(p) {
            last = Some(p);
            if let Some(stages) = &stages {
                let _ = stages.send(match p {
                    Progress::Forking => {
                        format!("answering in a fork of {}'s session", a.peer_name)
                    }
                    p => p.to_string(),
                });
            }
        }
    };
    let report = stages.is_some().then_some(&mut report as _);
    let res = reach::ask(
        spool,
        Target::parse(&a.peer_name)?,
        &a.query,
        timeout,
        a.fork,
    )?
    .answer(spool, Some(cancelled), report);
    res.map_err(for_the_model)
}

impl Server {
    /// Runs a call's spool and tmux work on the blocking pool, so that other calls go on
    /// meanwhile. An error becomes the tool error the agent reads.
    /// Runs an ask that waits (see [`Server::blocking`]), told when the call is cancelled, its
    /// stages sent to the client as progress when the client asked for progress.
    async fn asking(
        &self,
        ctx: RequestContext<RoleServer>,
        work: impl FnOnce(&Spool, &dyn Fn() -> bool, Option<UnboundedSender<String>>) -> Result<String>
        + Send
        + 'static,
    ) -> Result<String, String> {
        let (stages, to_send) = tokio::sync::mpsc::unbounded_channel::<String>();
        let sender = progress_sender(&ctx, to_send);
        let ct = ctx.ct.clone();
        let stages = sender.is_some().then_some(stages);
        let res = self
            .blocking(move |spool| work(spool, &|| ct.is_cancelled(), stages))
            .await;
        // Its progress before its result; but after a cancellation nobody reads either.
        if let Some(sender) = sender.filter(|_| !ctx.ct.is_cancelled()) {
            let _ = sender.await;
        }
        res
    }

    async fn blocking(
        &self,
        work: impl FnOnce(&Spool) -> Result<String> + Send + 'static,
    ) -> Result<String, String> {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || work(&spool)).await {
            Ok(res) => res.map_err(|e| format!("{e:#}")),
            Err(e) => Err(format!("repowire failed: {e}")),
        }
    }
}

#[tool_handler(name = "repowire")]
impl ServerHandler for Server {
    /// Claude Code (2.1.330) first probes with `server/discover`. Answered, it moves to the
    /// sessionless protocol 2026-07-28; "method not found" keeps it on the `initialize`
    /// handshake (2025-11-25), which every client speaks and which this server is tested
    /// with, progress and cancellation included.
    async fn discover(&self, _: RequestContext<RoleServer>) -> Result<DiscoverResult, ErrorData> {
        Err(ErrorData::method_not_found::<DiscoverRequestMethod>())
    }
}
