// repowire's OpenCode plugin: written by `repowire setup --agent opencode`, removed by
// `repowire uninstall`; do not edit (setup writes it again). It makes this OpenCode session a
// repowire peer: on the events below it runs `repowire hook EVENT --agent opencode` with a
// JSON payload on stdin, one hook at a time and in order, and never waits for one.
//
//   plugin loaded (the TUI starts)      -> session-start (the pane is a peer at once)
//   session.created                     -> session-start, with the session's id
//   chat.message                        -> prompt, with the prompt's text
//   session.idle after a turn           -> stop, with the turn's last text reply
//   session.error MessageAbortedError   -> interrupt (Esc)
//   session.deleted                     -> session-end
//
// It also serves the session an inbox, as Claude Code does: a Unix socket in a private
// directory, whose path and token (a secret) only its hooks are given. A writer sends
// {"type":"auth","token":T} and {"type":"user","session_id":S,"message":{"role":"user",
// "content":TEXT}}, one line each; the text becomes a turn of session S, as if typed
// (session.promptAsync), whatever is in the prompt box. The socket answers nothing.
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const REPOWIRE = __REPOWIRE__
// About the most one line of the inbox may hold (repowire sends at most 32 KiB of text).
const MAX_POST = 2 * 1024 * 1024

// The inbox: its socket and token, or null when it cannot be opened (then the session is
// typed into).
const openInbox = (client) => {
  let dir
  try {
    dir = mkdtempSync(join(tmpdir(), "repowire-opencode-"))
  } catch {
    return null
  }
  const inbox = { socket: join(dir, "inbox.sock"), token: randomBytes(16).toString("hex") }
  const server = createServer((conn) => {
    let data = ""
    conn.setEncoding("utf8")
    conn.on("error", () => {})
    conn.on("data", (chunk) => {
      data += chunk
      if (data.length > MAX_POST) conn.destroy()
    })
    conn.on("end", () => {
      const [auth, post] = data.split("\n").map((l) => {
        try {
          return JSON.parse(l)
        } catch {
          return null
        }
      })
      const text = post?.message?.content
      if (auth?.type !== "auth" || auth.token !== inbox.token) return
      if (post?.type !== "user" || typeof post.session_id !== "string" || typeof text !== "string")
        return
      client.session
        .promptAsync({ path: { id: post.session_id }, body: { parts: [{ type: "text", text }] } })
        .catch(() => {})
    })
  })
  server.on("error", () => {})
  server.listen(inbox.socket)
  server.unref()
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }))
  return inbox
}

export const Repowire = async ({ directory, client }) => {
  // A fork answering a question is no peer (repowire's hooks would do nothing anyway).
  if (process.env.REPOWIRE_FORK) return {}
  const inbox = openInbox(client)
  let queue = Promise.resolve()
  const hook = (event, payload) => {
    queue = queue.then(
      () =>
        new Promise((done) => {
          let child
          try {
            // Its output would draw over OpenCode's screen: none is kept.
            // The inbox of the session the event is about, for its hook.
            const env = { ...process.env }
            if (inbox) {
              env.REPOWIRE_INBOX_SOCKET = inbox.socket
              env.REPOWIRE_INBOX_TOKEN = inbox.token
              env.REPOWIRE_INBOX_SESSION = payload.session_id ?? ""
            }
            child = spawn(REPOWIRE, ["hook", event, "--agent", "opencode"], {
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
  }
  // Sessions in a turn, each one's latest assistant message with its text parts, and the
  // sessions of subagents (their turns are part of the turn that started them).
  const busy = new Set()
  const replies = new Map()
  const subagents = new Set()
  hook("session-start", { cwd: directory })
  return {
    "chat.message": async (input, output) => {
      if (subagents.has(input.sessionID)) return
      const prompt = (output.parts || [])
        .filter((p) => p.type === "text" && !p.synthetic && !p.ignored)
        .map((p) => p.text)
        .join("\n")
      busy.add(input.sessionID)
      hook("prompt", { session_id: input.sessionID, cwd: directory, prompt })
    },
    event: async ({ event }) => {
      const p = event.properties || {}
      if (subagents.has(p.sessionID ?? p.info?.id)) return
      switch (event.type) {
        case "session.created":
          if (p.info?.parentID) {
            subagents.add(p.info.id)
            break
          }
          hook("session-start", {
            session_id: p.info?.id ?? p.sessionID,
            cwd: p.info?.directory ?? directory,
          })
          break
        case "message.updated":
          if (p.info?.role === "assistant" && replies.get(p.info.sessionID)?.id !== p.info.id)
            replies.set(p.info.sessionID, { id: p.info.id, parts: new Map() })
          break
        case "message.part.updated": {
          const part = p.part || {}
          const reply = replies.get(part.sessionID)
          if (part.type === "text" && !part.synthetic && reply?.id === part.messageID)
            reply.parts.set(part.id, part.text)
          break
        }
        case "session.error":
          // Esc: the turn ends without an answer (session.idle follows, and is not a stop).
          if (p.error?.name === "MessageAbortedError" && busy.delete(p.sessionID))
            hook("interrupt", { session_id: p.sessionID })
          break
        case "session.idle":
          // OpenCode may report idle twice; only the first ends the turn.
          if (busy.delete(p.sessionID)) {
            const text = [...(replies.get(p.sessionID)?.parts.values() || [])].join("\n")
            replies.delete(p.sessionID)
            hook("stop", { session_id: p.sessionID, last_assistant_message: text || null })
          }
          break
        case "session.deleted":
          hook("session-end", { session_id: p.info?.id ?? p.sessionID })
          break
      }
    },
  }
}
