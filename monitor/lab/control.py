"""How `monitor lab down/up/degrade/load/reboot/status` talk to the running lab.

One JSON object per line over a Unix socket that only the lab's user can open. The lab answers
`{"ok": bool, "message": str}`.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

Handler = Callable[[dict], Awaitable[str]]


def default_socket() -> Path:
    if os.geteuid() == 0:
        return Path("/run/schoolnet-monitor/lab.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "schoolnet-monitor-lab.sock"
    return Path(f"/tmp/schoolnet-monitor-lab-{os.geteuid()}.sock")


class ControlServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            if _alive(self.path):
                raise RuntimeError(f"another lab is running (control socket {self.path})")
            self.path.unlink()
        old = os.umask(0o177)
        try:
            self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.path.exists():
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                message = await self.handler(request)
                reply = {"ok": True, "message": message}
            except (KeyError, ValueError) as exc:
                reply = {"ok": False, "message": str(exc).strip("'\"")}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        finally:
            writer.close()


def _alive(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def send(path: Path, request: dict, timeout: float = 30) -> dict:
    """Send one request to a running lab (raises ConnectionError when none runs there)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError as exc:
            raise ConnectionError(f"no lab is running (nothing listens on {path})") from exc
        s.sendall((json.dumps(request) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)
