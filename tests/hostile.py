"""A raw TCP server on 127.0.0.1 that misbehaves the way real web servers do: it never answers,
dribbles a byte at a time (its body, or its headers), sends an endless body, or resets the
connection mid-body. FeedServer
(vigie/localservers.py) speaks proper HTTP; this one is for the faults it cannot make."""

from __future__ import annotations

import contextlib
import functools
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Behaviour = Callable[[socket.socket], None]
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"


def never_answers(conn: socket.socket) -> None:
    """Reads the request, then keeps the connection open without a word."""
    conn.recv(65536)
    time.sleep(30)


def dribbles(conn: socket.socket) -> None:
    """Announces 100 kB and sends one byte every 0.2 s: each read arrives within its timeout."""
    conn.recv(65536)
    conn.sendall(HEADERS + b"Content-Length: 100000\r\n\r\n<rss>")
    for _ in range(300):
        conn.sendall(b" ")
        time.sleep(0.2)


def dribbles_headers(conn: socket.socket) -> None:
    """Sends its status line and headers one byte every 0.2 s, for a minute: each byte resets
    the client's read timeout, and the headers never end."""
    conn.recv(65536)
    for byte in (HEADERS + b"X-Padding: " + b"x" * 400).decode():
        conn.sendall(byte.encode())
        time.sleep(0.2)


def endless_body(conn: socket.socket) -> None:
    """A body without a length that never ends, as fast as the client reads."""
    conn.recv(65536)
    conn.sendall(HEADERS + b"Connection: close\r\n\r\n<rss><channel>")
    block = b"<item><title>x</title></item>" * 2000
    for _ in range(10_000):  # 600 MB at most, far over any cap
        conn.sendall(block)


def resets_mid_body(conn: socket.socket) -> None:
    """Announces 10 kB, sends 100 bytes, then resets the connection (RST, not FIN)."""
    conn.recv(65536)
    conn.sendall(HEADERS + b"Content-Length: 10000\r\n\r\n" + b"<rss>" + b" " * 95)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def answers_with_reason(reason: bytes, conn: socket.socket) -> None:
    """A 404 whose reason phrase is `reason`: text the server chooses, recorded by the client.
    Bind it with functools.partial (`reason_phrase` below)."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 404 " + reason + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def reason_phrase(reason: bytes) -> Behaviour:
    return functools.partial(answers_with_reason, reason)


@functools.cache
def gzip_bomb(members: int = 32) -> bytes:
    """`members` gzip members of 64 MB of zeros each, one after the other (a valid gzip
    stream): 2 GB once decompressed from about 2 MB on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * (1 << 20)
    member = b"".join(packer.compress(zeros) for _ in range(64)) + packer.flush()
    return member * members


@contextmanager
def hostile_server(behaviour: Behaviour) -> Iterator[str]:
    """Serve `behaviour` to every connection; yields the URL of a feed on it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        # OSError: the client gave up, which is what it should do.
        with conn, contextlib.suppress(OSError):
            behaviour(conn)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _smtp(conn: socket.socket, *, rcpt: bytes = b"250 ok", drop_in_data: bool = False) -> None:
    """Speak enough SMTP: each recipient gets `rcpt`; with `drop_in_data`, the connection is
    reset once the first line of the message has arrived."""
    conn.sendall(b"220 hostile.example ESMTP\r\n")
    reader = conn.makefile("rb")
    while line := reader.readline():
        command = line[:4].upper()
        if command in (b"EHLO", b"HELO"):
            conn.sendall(b"250 hostile.example\r\n")
        elif command == b"RCPT":
            conn.sendall(rcpt + b"\r\n")
        elif command == b"DATA" and drop_in_data:
            conn.sendall(b"354 go ahead\r\n")
            reader.readline()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        elif command == b"QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"250 ok\r\n")


def smtp_drops_mid_data(conn: socket.socket) -> None:
    """An SMTP server that takes the envelope, starts DATA, and drops the connection."""
    _smtp(conn, drop_in_data=True)


def smtp_never_greets(conn: socket.socket) -> None:
    """An SMTP server that accepts the connection and never says a word."""
    time.sleep(30)


def smtp_refuses_permanently(conn: socket.socket) -> None:
    """An SMTP server that refuses every recipient for good (554)."""
    _smtp(conn, rcpt=b"554 5.7.1 Relay access denied")
