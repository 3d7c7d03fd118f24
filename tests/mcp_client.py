#!/usr/bin/env python3
"""A real MCP client against `repowire mcp`: the `mcp` Python SDK's stdio client (pinned in
tests/mcp-client-requirements.txt), not written here. tests/mcp.rs runs it.

    mcp_client.py REPOWIRE_BIN PEER QUESTION

Starts `REPOWIRE_BIN mcp` (with this environment's REPOWIRE_HOME and locale), lists the tools, calls
list_peers, then ask_peer(PEER, QUESTION) with a progress callback, and prints one JSON
object: the negotiated protocol version, the tool names, each call's text and isError, and the
progress messages.
"""
import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters


def text(result):
    return {"text": "".join(c.text for c in result.content if c.type == "text"), "is_error": result.is_error}


async def main(binary, peer, question):
    # The SDK starts servers with a minimal environment (HOME, PATH, ...); the spool, and a
    # UTF-8 locale, which repowire's tmux queries need, are passed on.
    keep = ("REPOWIRE_HOME", "LANG", "LC_ALL", "LC_CTYPE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    server = StdioServerParameters(command=binary, args=["mcp"], env=env)
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    async with Client(server) as client:
        tools = await client.list_tools()
        peers = await client.call_tool("list_peers", {})
        answer = await client.call_tool(
            "ask_peer", {"peer_name": peer, "query": question}, progress_callback=on_progress
        )
        out = {
            "protocol_version": client.protocol_version,
            "tools": sorted(t.name for t in tools.tools),
            "list_peers": text(peers),
            "ask_peer": text(answer),
            "progress": progress,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
