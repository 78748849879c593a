"""The engram-extract worker's framing, for the bench scripts: each message is an 8-byte
little-endian length and that many bytes (src/extract/worker.rs is the engram side). The worker
first sends {"ready":1}; then per file it takes a JSON header and the file's bytes and answers
with the JSON of Result<Document, Skip> (and {"progress":1} before each page of OCR)."""
import json
import os
import select
import struct
import time


def worker_env():
    """The environment engram starts the worker with (src/extract/worker.rs): one OpenMP thread
    for Tesseract (more is 3-5x slower on two cores) and two malloc arenas."""
    env = dict(os.environ)
    env.setdefault("OMP_THREAD_LIMIT", "1")
    env["MALLOC_ARENA_MAX"] = "2"
    return env


def write_frames(stream, *frames):
    for frame in frames:
        stream.write(struct.pack("<Q", len(frame)) + frame)
    stream.flush()


def read_exact(fd, n, deadline):
    """n bytes from fd by the monotonic deadline; TimeoutError or EOFError otherwise."""
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def read_message(fd, deadline):
    (n,) = struct.unpack("<Q", read_exact(fd, 8, deadline))
    return json.loads(read_exact(fd, n, deadline))
