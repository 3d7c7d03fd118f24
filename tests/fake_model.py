#!/usr/bin/env python3
"""A scripted fake model API for Claude Code, the Codex CLI, the Gemini CLI and OpenCode.

Python standard library only; listens on 127.0.0.1. It speaks:
  * Anthropic Messages, streamed or not: POST /v1/messages, /v1/messages/count_tokens,
             GET /v1/models, HEAD /api/hello                   (Claude Code, ANTHROPIC_BASE_URL)
  * OpenAI Responses, streamed:  POST /v1/responses            (Codex, wire_api = "responses";
                                 OpenCode, its openai provider with a local baseURL)
  * Gemini:  POST /v1beta/models/M:streamGenerateContent?alt=sse, :generateContent,
             :countTokens, GET .../models                      (Gemini CLI, GOOGLE_GEMINI_BASE_URL)

The "model" reads the last user text of a request (a repowire prompt: header line, then the
text that was sent; of a message posted to Claude Code's inbox, the message it wraps) and follows the first script line it finds there:
  REPLY <text>              reply <text> (the rest of the message after REPLY, verbatim)
  CALL_TOOL <name> <json>   call tool <name> with arguments <json> (one JSON object)
  SLEEP <seconds>           (any line) wait that long first, e.g. to be interrupted
  anything else             reply "ECHO: <the whole last user text>"
A request whose last item is a tool result is answered "TOOL_RESULT: <result text>".
Claude Code's side requests (those without tools: a session title, a topic check) get a value
of the JSON schema they ask for, or "OK".

Every request is appended as a JSON line to --log (method, path, body, reply), so a test can
see what the CLI sent.

usage: fake_model.py --port-file FILE --log FILE [--port N]
"""

import argparse
import itertools
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDS = itertools.count(1)
LOG_LOCK = threading.Lock()
LOG_PATH = None


def log(entry):
    entry["t"] = time.time()
    with LOG_LOCK, open(LOG_PATH, "a") as f:
        f.write(json.dumps(entry) + "\n")


def script(user_text):
    """What the model does for a user text: ("text", str) or ("call", name, args). Spaces at
    its end do not count: OpenCode adds one after a long paste it showed as "[Pasted ~N
    lines]"."""
    text = (user_text or "").rstrip(" ")
    m = re.search(r"^SLEEP\s+([0-9.]+)\s*$", text, re.M)
    if m:
        time.sleep(min(float(m.group(1)), 300))
    m = re.search(r"^CALL_TOOL\s+(\S+)\s+(\{.*\})\s*$", text, re.M | re.S)
    if m:
        return ("call", m.group(1), json.loads(m.group(2)))
    m = re.search(r"^REPLY (.*)", text, re.M | re.S)
    if m:
        return ("text", m.group(1))
    return ("text", "ECHO: " + text)


def tool_result_text(value):
    """The text of a tool result in whatever shape a CLI sends it."""
    if isinstance(value, str):
        try:
            return tool_result_text(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, list):
        return " | ".join(tool_result_text(v) for v in value)
    if isinstance(value, dict):
        for key in ("text", "output", "content", "llmContent", "result"):
            if key in value:
                return tool_result_text(value[key])
    return json.dumps(value)


# ------------------------------------------------------------------ OpenAI Responses (Codex)
def responses_decision(body):
    items = body.get("input") or []
    if isinstance(items, str):
        return script(items)
    if items and items[-1].get("type", "").endswith("_output"):
        return ("text", "TOOL_RESULT: " + tool_result_text(items[-1].get("output")))
    for it in reversed(items):
        if it.get("type", "message") == "message" and it.get("role") == "user":
            content = it.get("content")
            if isinstance(content, str):
                return script(content)
            texts = [c.get("text", "") for c in content or [] if isinstance(c, dict)
                     and c.get("type") in ("input_text", "text")]
            # (OpenCode's plan agent adds a <system-reminder> block, as Claude Code does.)
            return script("".join(SYSTEM_REMINDER.sub("", t) for t in texts))
    return script("")


def responses_events(body):
    # Codex also asks, without tools, for a title for the thread: any text will do.
    d = responses_decision(body) if body.get("tools") else ("text", "A thread")
    rid, model = "resp_%d" % next(IDS), body.get("model", "fake")
    events = [{"type": "response.created",
               "response": {"id": rid, "object": "response", "model": model,
                            "status": "in_progress", "output": []}}]
    if d[0] == "text":
        mid = "msg_%d" % next(IDS)
        item = {"type": "message", "id": mid, "role": "assistant", "status": "in_progress",
                "content": []}
        part = {"type": "output_text", "text": "", "annotations": []}
        events += [
            {"type": "response.output_item.added", "output_index": 0, "item": item},
            {"type": "response.content_part.added", "item_id": mid, "output_index": 0,
             "content_index": 0, "part": part},
            {"type": "response.output_text.delta", "item_id": mid, "output_index": 0,
             "content_index": 0, "delta": d[1]},
            {"type": "response.output_text.done", "item_id": mid, "output_index": 0,
             "content_index": 0, "text": d[1]},
        ]
        done = dict(item, status="completed", content=[dict(part, text=d[1])])
    else:
        _, name, args = d
        done = {"type": "function_call", "id": "fc_%d" % next(IDS),
                "call_id": "call_%d" % next(IDS), "name": name,
                "arguments": json.dumps(args), "status": "completed"}
        # Codex offers MCP tools as namespaces ({"type":"namespace","name":"mcp__repowire"}):
        # a call names the namespace and the bare tool.
        spaces = {t.get("name") for t in body.get("tools") or [] if t.get("type") == "namespace"}
        space, _, tool = name.rpartition("__")
        if space in spaces:
            done["namespace"], done["name"] = space, tool
        events += [
            {"type": "response.output_item.added", "output_index": 0,
             "item": dict(done, status="in_progress", arguments="")},
            {"type": "response.function_call_arguments.done", "item_id": done["id"],
             "output_index": 0, "arguments": done["arguments"]},
        ]
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
             "output_tokens": 5, "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": 15}
    events += [
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed",
         "response": {"id": rid, "object": "response", "model": model, "status": "completed",
                      "output": [done], "usage": usage}},
    ]
    return events, d


# ------------------------------------------------------------------------ Gemini (Gemini CLI)
def gemini_decision(body):
    contents = body.get("contents") or []
    if not contents:
        return script("")
    results = [p["functionResponse"] for p in contents[-1].get("parts") or []
               if isinstance(p, dict) and "functionResponse" in p]
    if results:
        return ("text", "TOOL_RESULT: " + tool_result_text(results[-1].get("response")))
    for c in reversed(contents):
        if c.get("role", "user") != "user":
            continue
        # The CLI adds context (<session_context>, hook output) as separate text parts: the
        # typed prompt is the last plain one.
        texts = [p["text"] for p in c.get("parts") or [] if isinstance(p, dict)
                 and p.get("text") and not p.get("thought")
                 and not p["text"].lstrip().startswith("<session_context>")]
        if texts:
            return script(texts[-1])
    return script("")


def example_of(schema):
    """A value matching a JSON schema, for the CLI's structured side requests."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        return {k: example_of(v) for k, v in (schema.get("properties") or {}).items()}
    return {"array": [], "number": 0, "integer": 0, "boolean": False}.get(kind, "fake")


def gemini_reply(body):
    config = body.get("generationConfig") or {}
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if schema or config.get("responseMimeType") == "application/json":
        d = ("text", json.dumps(example_of(schema) if schema else {}))
    else:
        d = gemini_decision(body)
    part = {"text": d[1]} if d[0] == "text" else {"functionCall": {"name": d[1], "args": d[2]}}
    return {"candidates": [{"content": {"role": "model", "parts": [part]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5,
                              "totalTokenCount": 15},
            "modelVersion": "fake", "responseId": "r%d" % next(IDS)}, d


# ------------------------------------------------------------------ Anthropic (Claude Code)
SYSTEM_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)


# A message posted to Claude Code's inbox (2.1.248 and later) reaches the model between a line
# before it and a paragraph after it (measured with 2.1.330); the model reads the message.
INBOX_MESSAGE = re.compile(
    r"\AAnother Claude session sent a message:\n(.*?)\n\nThis came from another Claude session\b.*\Z",
    re.S)


def anthropic_user_text(message):
    """What the person typed (or another session posted): the text blocks, without Claude
    Code's <system-reminder>s and the words it wraps an inbox message in."""
    content = message.get("content")
    parts = [content] if isinstance(content, str) else [
        b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
    parts = (SYSTEM_REMINDER.sub("", p).strip() for p in parts)
    parts = (INBOX_MESSAGE.sub(r"\1", p) for p in parts)
    return "\n".join(p for p in parts if p)


def anthropic_decision(body):
    if not body.get("tools"):  # Claude Code's own side request
        schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
        return ("text", json.dumps(example_of(schema)) if schema else "OK")
    users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
    if not users:
        return script("")
    last = users[-1]
    text = anthropic_user_text(last)
    results = [b for b in last.get("content") or [] if isinstance(b, dict)
               and b.get("type") == "tool_result"]
    if results and not text:
        return ("text", "TOOL_RESULT: " + " | ".join(tool_result_text(b.get("content", ""))
                                                     for b in results))
    return script(text)


def anthropic_message(body):
    d = anthropic_decision(body)
    if d[0] == "text":
        block, stop = {"type": "text", "text": d[1]}, "end_turn"
    else:
        block = {"type": "tool_use", "id": "toolu_%024d" % next(IDS), "name": d[1],
                 "input": d[2]}
        stop = "tool_use"
    return {"id": "msg_%d" % next(IDS), "type": "message", "role": "assistant",
            "model": body.get("model", "fake"), "content": [block], "stop_reason": stop,
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}, d


def anthropic_events(message):
    """The server-sent events of a streamed reply: as the real service sends them, a ping
    after the start and the text in a few deltas."""
    block = message["content"][0]
    start = dict(message, content=[], stop_reason=None)
    if block["type"] == "text":
        opened, text = dict(block, text=""), block["text"]
        step = len(text) // 3 + 1
        deltas = [{"type": "text_delta", "text": text[i:i + step]}
                  for i in range(0, len(text), step)] or [{"type": "text_delta", "text": ""}]
    else:
        opened = dict(block, input={})
        deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
    events = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": opened}),
    ] + [
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d})
        for d in deltas
    ] + [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": message["stop_reason"],
                                     "stop_sequence": None},
                           "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return ["event: %s\ndata: %s\n\n" % (name, json.dumps(data)) for name, data in events]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunked_sse(self, events):
        """Server-sent events in HTTP chunks, one flush each, the connection kept open: as
        the real Anthropic API streams (Claude Code's timing around its Stop hook depends on
        it)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for e in events:
            data = e.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def send_sse(self, chunks):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for c in chunks:
            self.wfile.write(c.encode())
            self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self):  # Claude Code's reachability probe
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        path = self.path.split("?")[0]
        log({"method": "GET", "path": self.path})
        if path.endswith("/models"):
            return self.send_json(200, {"models": [{"name": "models/gemini-2.5-flash"}],
                                        "object": "list",
                                        "data": [{"id": "fake-model", "object": "model",
                                                  "type": "model"}]})
        self.send_json(404, {"error": {"message": "not found: " + self.path}})

    def do_POST(self):
        body = self.read_body()
        path = self.path.split("?")[0]
        entry = {"method": "POST", "path": self.path, "body": body}
        try:
            if path.endswith("/messages/count_tokens"):
                log(entry)
                return self.send_json(200, {"input_tokens": 10})
            if path.endswith("/messages"):
                message, entry["reply"] = anthropic_message(body)
                log(entry)
                if body.get("stream"):
                    return self.send_chunked_sse(anthropic_events(message))
                return self.send_json(200, message)
            if path.endswith("/responses"):
                events, entry["reply"] = responses_events(body)
                log(entry)
                return self.send_sse("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e))
                                     for e in events)
            if ":streamGenerateContent" in path or ":generateContent" in path:
                reply, entry["reply"] = gemini_reply(body)
                log(entry)
                if ":streamGenerateContent" in path:
                    return self.send_sse(["data: %s\r\n\r\n" % json.dumps(reply)])
                return self.send_json(200, reply)
            if ":countTokens" in path:
                log(entry)
                return self.send_json(200, {"totalTokens": 10})
        except Exception as e:  # a bad script line: tell the CLI, and the log
            entry["error"] = repr(e)
            log(entry)
            return self.send_json(400, {"error": {"message": "fake model: %r" % e}})
        log(entry)
        self.send_json(404, {"error": {"message": "not found: " + self.path}})


def main():
    global LOG_PATH
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    LOG_PATH = a.log
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
