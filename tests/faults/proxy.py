"""A TCP proxy on 127.0.0.1 that can go silent: a server that accepted the connection and then stops answering
(a hung server, a dropped route, a full network buffer) without ever closing it.

`stall(direction, after_bytes)` makes every connection stop forwarding in one direction once it has carried that
many bytes that way: "down" (server to client) starves a reader, "up" (client to server) a writer. The proxy then
stops reading too, so the sender's socket buffers fill and it blocks, as it would on a real silent peer.
`heal()` forwards everything on connections made from then on, and closes the stalled ones, as a network coming
back would reset them: the server then ends their sessions and releases their locks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal

Direction = Literal["up", "down"]
_PIECE = 64 * 1024


class SilentProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._limits: dict[Direction, int | None] = {"up": None, "down": None}
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._heals = 0
        self.stalled_connections = 0
        threading.Thread(target=self._accept, name="proxy accept", daemon=True).start()

    def stall(self, direction: Direction, after_bytes: int) -> None:
        with self._lock:
            self._limits[direction] = after_bytes

    def heal(self) -> None:
        with self._lock:
            self._limits = {"up": None, "down": None}
            self._heals += 1

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
                limits = dict(self._limits)
            for src, dst, direction in ((client, server, "up"), (server, client, "down")):
                threading.Thread(
                    target=self._pump, args=(src, dst, limits[direction]), name=f"proxy {direction}", daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        """Forward src to dst; past `limit` bytes, hold the connection open and forward nothing more."""
        carried = 0
        try:
            while not self._closed.is_set():
                if limit is not None and carried >= limit:
                    with self._lock:
                        self.stalled_connections += 1
                        heals = self._heals
                    while self._heals == heals and not self._closed.wait(0.2):
                        pass
                    for sock in (src, dst):
                        _drop(sock)
                    return
                want = _PIECE if limit is None else min(_PIECE, limit - carried)
                data = src.recv(want)
                if not data:
                    break
                dst.sendall(data)
                carried += len(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _drop(sock)
            self._sockets.clear()


def _drop(sock: socket.socket) -> None:
    """Shut down, then close: a bare close() while another thread waits in recv() on the socket sends nothing, so
    the peer would never learn the connection is gone."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class SilentServer:
    """Accepts connections on 127.0.0.1 and never sends a byte: a connection attempt can only time out."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, name="silent accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        for conn in self._held:
            _drop(conn)
