"""`sage chat` as a person uses it: in a real terminal (tmux), against a real `sage serve` and the stub LLM.

Keys go in with ``send-keys``; what the person would see is read with ``capture-pane``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._children import Child
from tests._http import healthy
from tests.chat_stub import ChatStub, chat_stub
from tests.mcp_tool_server import free_port

SCREENSHOTS = os.environ.get("SAGE_TEST_SCREENSHOTS")  # read at import: the env fixture clears SAGE_*
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    """One tmux pane running a command; waits poll the screen and end at once if the program exits."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.socket = f"sage-test-{uuid.uuid4().hex[:8]}"
        self.tmux = ["tmux", "-L", self.socket]
        exports = [f"{k}={v}" for k, v in env.items()]
        subprocess.run([*self.tmux, "new-session", "-d", "-s", "chat", "-x", "150", "-y", "60", "env", *exports,
                        *command], check=True)  # fmt: skip
        subprocess.run([*self.tmux, "set-option", "-t", "chat", "remain-on-exit", "on"], check=True)

    def send(self, text: str, enter: bool = True) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "chat", "-l", text], check=True)
        if enter:
            subprocess.run([*self.tmux, "send-keys", "-t", "chat", "Enter"], check=True)

    def key(self, name: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", "chat", name], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.tmux, "capture-pane", "-p", "-J", "-S", "-500", "-t", "chat"],
                              check=True, capture_output=True, text=True).stdout  # fmt: skip

    def screenshot(self, title: str) -> None:
        """With SAGE_TEST_SCREENSHOTS=DIR, the screen (colours kept) as DIR/sage-chat.svg, for the docs."""
        if not SCREENSHOTS:
            return
        from rich.console import Console
        from rich.text import Text

        ansi = subprocess.run([*self.tmux, "capture-pane", "-p", "-e", "-t", "chat"], check=True,
                              capture_output=True, text=True).stdout.rstrip("\n")  # fmt: skip
        console = Console(record=True, width=150, file=open(os.devnull, "w"))  # noqa: SIM115 (the record is what counts)
        console.print(Text.from_ansi(ansi))
        console.save_svg(str(Path(SCREENSHOTS) / "sage-chat.svg"), title=title)
        console.file.close()

    def dead(self) -> bool:
        out = subprocess.run([*self.tmux, "display-message", "-p", "-t", "chat", "#{pane_dead}"],
                             capture_output=True, text=True).stdout.strip()  # fmt: skip
        return out == "1"

    def wait_for(self, text: str, timeout: float = 30, after: int = 0) -> str:
        """The screen once ``text`` shows after the first ``after`` characters of the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen[after:]:
                return screen
            if self.dead():
                raise AssertionError(f"sage chat exited while waiting for {text!r}:\n{screen}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} did not show within {timeout:.0f} s:\n{screen}")
            time.sleep(0.1)  # the screen of another process: polled

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)


@pytest.fixture
def llm() -> Iterator[ChatStub]:
    with chat_stub() as stub:
        yield stub


@pytest.fixture
def served(env: dict[str, str], llm: ChatStub) -> Iterator[str]:
    port = free_port()
    server_env = {**os.environ, **env, "SAGE_PORT": str(port), "SAGE_DEFAULT_LLM_MODEL_NAME": "stub-model",
                  "SAGE_DEFAULT_LLM_API_BASE_URL": llm.url, "SAGE_DEFAULT_LLM_MAX_RETRIES": "0"}  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with Child([sys.executable, "-m", "sage_platform.cli", "serve"], env=server_env, name="sage serve") as server:
        server.wait_for(lambda: healthy(url), timeout=120, what="/health")
        yield url


def test_sage_chat_in_a_terminal(served: str, llm: ChatStub, env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "chat-data"
    pane = Pane([sys.executable, "-m", "sage_platform.cli", "chat", "--url", served, "--data-dir", str(data)],
                {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "HOME": str(tmp_path)})  # fmt: skip
    try:
        pane.wait_for("Sage chat on " + served)
        pane.send("hello there")
        pane.wait_for("stub answer to: hello there")

        pane.send("first line\\")  # a trailing backslash continues the message
        pane.send("second line")
        pane.wait_for("stub answer to: first line second line")

        pane.send("[[tool:nope]] use a tool")
        screen = pane.wait_for("tool results:")
        assert "→ nope({})" in screen and "✗ nope: no tool named 'nope'" in screen

        pane.send("/mode multi")
        pane.wait_for("mode multi")
        plan = json.dumps({"analysis": "two parts", "steps": ["look it up", "sum it up"]})
        mark = len(pane.screen())
        pane.send(f"[[plan {plan}]] plan this")
        screen = pane.wait_for("stub answer to: All steps are done", after=mark)
        assert "plan two parts" in screen and "1. look it up" in screen and "step 2 completed" in screen

        notes = tmp_path / "notes.txt"
        notes.write_text("shopping: tea, bread\n")
        pane.send(f"/upload {notes}")
        pane.wait_for("uploaded notes.txt (version 1, 21 bytes)")
        pane.send("/files")
        pane.wait_for("notes.txt v1  text/plain  21 bytes")

        mark = len(pane.screen())
        pane.send("/mode simple")
        pane.send("[[hold]] tell me a long story")
        assert llm.holding.wait(30)
        pane.key("C-c")  # stops the run, not the program
        pane.wait_for("stopped", after=mark)
        llm.release()
        pane.send("still there?")
        pane.wait_for("stub answer to: still there?")

        pane.send("/sessions")
        screen = pane.wait_for("messages  hello there")
        pane.screenshot("sage chat")
        pane.send("/new")
        pane.wait_for("new session")
        pane.send("/quit")
        deadline = time.monotonic() + 10
        while not pane.dead():
            assert time.monotonic() < deadline, pane.screen()
            time.sleep(0.1)  # the program's exit, seen through tmux
        history = (data / "chat_history").read_text()
        assert "hello there" in history and "/upload" in history  # line history is kept
    finally:
        pane.close()
