// repowire's Pi extension: written by `repowire setup --agent pi`, removed by `repowire
// uninstall`; do not edit (setup writes it again). It makes this Pi session a repowire peer:
// on the events below it runs `repowire hook EVENT --agent pi` with a JSON payload on stdin,
// one hook at a time and in order, and never waits for one.
//
//   session_start                   -> session-start, with the session's id and file
//   before_agent_start              -> prompt, with the prompt's text
//   agent_end                       -> stop, with the turn's last text reply;
//                                      interrupt when the turn was aborted (Esc)
//   session_shutdown (quit)         -> session-end
//
// A run that shows no session (`pi -p`, piped input, `--mode json` or `rpc`) runs no hooks:
// it is no peer, and its turns are not its pane's peer's.
//
// It gives Pi repowire's tools (ask_peer, notify_peer, list_peers, ...): it starts
// `repowire mcp --agent pi` and offers each tool that server lists under the same name, with
// the same arguments, output and progress.
//
// It serves the session an inbox, as Claude Code does: a Unix socket in a private directory,
// whose path and token (a secret) only its hooks are given. A writer sends
// {"type":"auth","token":T} and {"type":"user","session_id":S,"message":{"role":"user",
// "content":TEXT}}, one line each; the text becomes the session's next turn once it is idle
// (pi.sendUserMessage), as if typed, whatever is in the prompt box. The socket answers nothing.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

const REPOWIRE = __REPOWIRE__
// About the most one line of the inbox may hold (repowire sends at most 32 KiB of text).
const MAX_POST = 2 * 1024 * 1024
// How long the tools' server may take to start before Pi starts without its tools.
const TOOLS_START_MS = 10_000

// Whether this Pi shows a session a person works in (as Pi decides its mode).
const interactive = () => {
  const args = process.argv.slice(2)
  const mode = args.find((a, i) => a.startsWith("--mode=") || args[i - 1] === "--mode")
  const other = mode && mode.replace("--mode=", "") !== "text"
  return Boolean(process.stdin.isTTY) && !other && !args.includes("-p") && !args.includes("--print")
}

// The inbox: its socket and token, and `close`, once it listens; null when it cannot be
// opened (then the session is typed into). `post(sessionId, text)` gets each message.
const openInbox = async (post) => {
  let dir
  try {
    dir = mkdtempSync(join(tmpdir(), "repowire-pi-"))
  } catch {
    return null
  }
  const token = randomBytes(16).toString("hex")
  const server = createServer((conn) => {
    let data = ""
    conn.setEncoding("utf8")
    conn.on("error", () => {})
    conn.on("data", (chunk) => {
      data += chunk
      if (data.length > MAX_POST) conn.destroy()
    })
    conn.on("end", () => {
      const [auth, msg] = data.split("\n").map((l) => {
        try {
          return JSON.parse(l)
        } catch {
          return null
        }
      })
      const text = msg?.message?.content
      if (auth?.type !== "auth" || auth.token !== token) return
      if (msg?.type !== "user" || typeof msg.session_id !== "string" || typeof text !== "string")
        return
      post(msg.session_id, text)
    })
  })
  const socket = join(dir, "inbox.sock")
  try {
    await new Promise((listening, failed) => {
      server.once("error", failed)
      server.listen(socket, listening)
    })
    // Node listens at a cut path where the path is too long for a socket.
    if (!existsSync(socket)) throw new Error("no socket at " + socket)
  } catch {
    server.close()
    rmSync(dir, { recursive: true, force: true })
    return null
  }
  server.on("error", () => {})
  server.unref()
  const close = () => {
    server.close()
    rmSync(dir, { recursive: true, force: true })
  }
  process.on("exit", close)
  return { socket, token, close }
}

// repowire's MCP server as a child, and the tools it lists; null when it does not start.
const startTools = async () => {
  let child
  try {
    child = spawn(REPOWIRE, ["mcp", "--agent", "pi"], { stdio: ["pipe", "pipe", "ignore"] })
  } catch {
    return null
  }
  const pending = new Map()
  const progress = new Map()
  let next = 1
  const fail = (why) => {
    for (const { reject } of pending.values()) reject(new Error(why))
    pending.clear()
  }
  child.on("error", () => fail("repowire's tools are not running: cannot start " + REPOWIRE))
  child.on("close", () => fail("repowire's tools are not running (repowire mcp exited)"))
  child.stdin.on("error", () => {})
  createInterface({ input: child.stdout }).on("line", (line) => {
    let msg
    try {
      msg = JSON.parse(line)
    } catch {
      return
    }
    if (msg.method === "notifications/progress") {
      progress.get(msg.params?.progressToken)?.(msg.params?.message)
    } else if (msg.id !== undefined && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id)
      pending.delete(msg.id)
      if (msg.error) reject(new Error(msg.error.message ?? "repowire mcp failed"))
      else resolve(msg.result)
    }
  })
  const send = (msg) => child.stdin.write(JSON.stringify({ jsonrpc: "2.0", ...msg }) + "\n")
  // The child is no reason for Pi to keep running (a finished `pi -p` exits), but a call
  // that waits for it is.
  const request = (method, params) =>
    new Promise((resolve, reject) => {
      const id = next++
      const done = (settle) => (value) => {
        if (pending.size === 0) child.stdout.unref?.()
        settle(value)
      }
      pending.set(id, { resolve: done(resolve), reject: done(reject) })
      child.stdout.ref?.()
      send({ id, method, params })
    })
  const close = () => {
    child.stdin.end()
    child.kill()
  }
  child.unref()
  child.stdin.unref?.()
  let timer
  try {
    const started = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out")), TOOLS_START_MS)
    })
    await Promise.race([
      request("initialize", {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "repowire-pi", version: "1" },
      }),
      started,
    ])
    send({ method: "notifications/initialized" })
    const { tools } = await Promise.race([request("tools/list", {}), started])
    clearTimeout(timer)
    // One call of a tool: its text, its stages as progress, cancelled with the turn.
    const call = async (name, args, callId, signal, onUpdate) => {
      const id = next
      const token = `pi-${callId}`
      progress.set(token, (message) => {
        if (typeof message === "string")
          onUpdate?.({ content: [{ type: "text", text: message }], details: {} })
      })
      const cancel = () =>
        send({ method: "notifications/cancelled", params: { requestId: id, reason: "aborted" } })
      signal?.addEventListener("abort", cancel, { once: true })
      try {
        const result = await request("tools/call", {
          name,
          arguments: args ?? {},
          _meta: { progressToken: token },
        })
        const text = (result?.content ?? [])
          .filter((c) => c.type === "text")
          .map((c) => c.text)
          .join("\n")
        if (result?.isError) throw new Error(text || `${name} failed`)
        return text
      } finally {
        progress.delete(token)
        signal?.removeEventListener("abort", cancel)
      }
    }
    return { tools: tools ?? [], call, close }
  } catch {
    clearTimeout(timer)
    close()
    return null
  }
}

export default async function (pi) {
  // A fork answering a question is no peer, and has none of repowire's tools.
  if (process.env.REPOWIRE_FORK) return
  const server = await startTools()
  for (const tool of server?.tools ?? []) {
    // Pi before 0.69 validates with a JSON Schema library that knows no `$schema` of 2020-12.
    const { $schema, ...parameters } = tool.inputSchema ?? { type: "object", properties: {} }
    pi.registerTool({
      name: tool.name,
      label: tool.name,
      description: tool.description ?? "",
      parameters,
      async execute(callId, params, signal, onUpdate) {
        const text = await server.call(tool.name, params, callId, signal, onUpdate)
        return { content: [{ type: "text", text }], details: {} }
      },
    })
  }
  pi.on("session_shutdown", () => server?.close())
  if (!interactive()) return

  let session = null
  let ctx = null
  // Messages posted to the inbox, each handed over once the session is idle.
  const waiting = []
  let draining = null
  const drain = () => {
    draining = null
    if (waiting.length === 0) return
    if (ctx && ctx.isIdle() && !ctx.hasPendingMessages()) {
      try {
        pi.sendUserMessage(waiting[0])
        waiting.shift()
      } catch {}
    }
    if (waiting.length > 0) draining = setTimeout(drain, 200)
  }
  const inbox = await openInbox((sessionId, text) => {
    if (sessionId !== session) return
    waiting.push(text)
    if (!draining) drain()
  })

  let queue = Promise.resolve()
  const hook = (event, payload) => {
    queue = queue.then(
      () =>
        new Promise((done) => {
          let child
          try {
            // Its output would draw over Pi's screen: none is kept.
            const env = { ...process.env }
            if (inbox) {
              env.REPOWIRE_INBOX_SOCKET = inbox.socket
              env.REPOWIRE_INBOX_TOKEN = inbox.token
              env.REPOWIRE_INBOX_SESSION = session ?? ""
            }
            child = spawn(REPOWIRE, ["hook", event, "--agent", "pi"], {
              stdio: ["pipe", "ignore", "ignore"],
              env,
            })
          } catch {
            return done()
          }
          child.on("error", done)
          child.on("close", done)
          child.stdin.on("error", () => {})
          child.stdin.end(JSON.stringify(payload))
        }),
    )
    return queue
  }

  pi.on("session_start", (_event, c) => {
    ctx = c
    session = c.sessionManager.getSessionId()
    hook("session-start", {
      session_id: session,
      cwd: c.cwd,
      transcript_path: c.sessionManager.getSessionFile() ?? null,
    })
  })
  pi.on("before_agent_start", (event, c) => {
    ctx = c
    hook("prompt", { session_id: session, prompt: event.prompt ?? "" })
  })
  pi.on("agent_end", (event, c) => {
    ctx = c
    const last = [...(event.messages ?? [])].reverse().find((m) => m.role === "assistant")
    if (last?.stopReason === "aborted") {
      hook("interrupt", { session_id: session })
      return
    }
    const text = (Array.isArray(last?.content) ? last.content : [])
      .filter((c) => c.type === "text")
      .map((c) => c.text)
      .join("\n")
    hook("stop", { session_id: session, last_assistant_message: text || null })
  })
  pi.on("session_shutdown", (event) => {
    clearTimeout(draining)
    inbox?.close()
    // A new, resumed or forked session starts at once, and registers again.
    if (event?.reason && event.reason !== "quit") return
    // Pi exits when its handlers are done: the hook gets up to 3 s.
    return Promise.race([
      hook("session-end", { session_id: session }),
      new Promise((done) => setTimeout(done, 3000).unref()),
    ])
  })
}
