"""``qwenfit mcp`` end to end: the official MCP SDK's own stdio client starts the server, lists the
tools with their JSON Schema inputs, and a check_command call returns exactly ``qwenfit check --json
-- COMMAND``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("mcp")

REPO = Path(__file__).resolve().parents[2]
COMMAND = ["llama-server", "-m", "Qwen3.5-35B-A3B-Q4_K_M.gguf", "-c", "262144", "-np", "2", "-fa", "on"]


def _cli_json(*argv: str) -> dict:
    import qwenfit.cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        qwenfit.cli.main(list(argv))
    return json.loads(out.getvalue())


async def _session() -> tuple[list, dict, dict, dict]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qwenfit", "mcp"],
        env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")},
        cwd=str(REPO),
    )
    async with stdio_client(params) as streams, ClientSession(*streams) as session:
        await session.initialize()
        tools = (await session.list_tools()).tools
        checked = await session.call_tool("check_command", {"command": COMMAND, "vram_gb": 24, "ram_gb": 64})
        line = await session.call_tool("check_command", {"command": " ".join(COMMAND[:3]) + " --lora a.gguf",
                                                         "vram_gb": 24})  # fmt: skip
        est = await session.call_tool("estimate", {"model": "9B", "quant": "Q4_K_M", "context": 8192})
        return tools, checked.structured_content, line.structured_content, est.structured_content


def test_mcp_server_answers_check_command_with_the_cli_json():
    # in a thread of its own: a session-wide event loop (Playwright's, in the browser tests) may be running
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tools, checked, refused, est = pool.submit(asyncio.run, _session()).result()
    by_name = {t.name: t for t in tools}
    assert set(by_name) == {"plan", "check", "check_command", "estimate"}
    schema = by_name["check_command"].input_schema
    assert schema["type"] == "object" and schema["required"] == ["command"]
    assert {"gpu", "vram_gb", "ram_gb", "gpus"} <= set(schema["properties"])
    expected = _cli_json("check", "--vram", "24", "--ram", "64", "--json", "--", *COMMAND)
    assert checked == expected and checked["kind"] == "check-command" and checked["fits"] is False
    assert checked["launches"][0]["fixes"]  # edits that fit, in the command's own flags
    assert refused["kind"] == "error" and "--lora" in refused["error"]["message"]
    assert est["model"] == "Qwen3.5-9B" and est["fits"] is None
