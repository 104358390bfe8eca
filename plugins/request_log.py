"""Request logs: one JSON line per answered request in ``data/logs/requests.log``, rotated by size,
and the admin API that pages back through them (docs/observability.md).

    GET /api/v1/admin/logs?status=&user=&path=&from=&to=&limit=&before=    newest first, admins only

A line says who asked what and how it went, never what was said: ``{"time", "id", "method",
"route", "status", "ms", "user", "client"}``, where ``route`` is the route's template
(``/api/v1/health/sessions/<session_id>``), not the path: a path holds ids, and a query string
may hold a token. Lines are written by a thread of their own, at most ``flush_seconds`` after the
request: a request never waits for the disk, and a full disk costs log lines (counted, and said
in the server log once a minute), never a request.
"""

import base64
import binascii
import json
import logging
import os
import re
import threading
import time
from pathlib import Path

import bottle

from wellmate import ApiError, Setting, hookimpl, json_dumps, page_args, parse_time
from wellmate_plugins._openapi import Api, integer, number, obj, page, string
from wellmate_plugins.auth import require_admin

log = logging.getLogger("wellmate.request_log")

LOG_NAME = "requests.log"  # then requests.log.1 (the newest rotated) ... requests.log.<keep>
MAX_PENDING = 20_000  # lines held while the disk refuses them (~3 MB); more are dropped and counted
READ_BLOCK = 64 * 1024  # the admin API reads files backwards this much at a time
STATUS_FILTER = re.compile(r"[1-5](?:\d\d|xx)")


# One line of data/logs/requests.log as GET /api/v1/admin/logs answers it.
LOG_LINE = obj({"time": string(format="date-time"), "id": string(), "method": string(),
                "route": string(nullable=True), "status": integer(), "ms": number(),
                "user": string(nullable=True), "client": string()}, title="RequestLogLine")


@hookimpl
def config_schema():
    return {"request_log": {
        "enabled": Setting(True, "Write one JSON line per request to the logs folder (false: none; the admin "
                                 "log API still reads what is there).", bool),
        "folder": Setting("logs", "Folder of the request log, relative to the data folder (storage.path)."),
        "max_kb": Setting(10240, "Size in KiB at which requests.log is rotated to requests.log.1.", int,
                          min=1, max=10 * 1024 * 1024),
        "keep": Setting(5, "Rotated files kept (requests.log.1 ... .N); the oldest goes.", int, min=1, max=100),
        "flush_seconds": Setting(1.0, "Longest a line waits in memory before it is written (what a crash of the "
                                      "process may lose).", float, min=0.01, max=60),
    }}


class RequestLog:
    """The log of one Wellmate: lines queued by the request threads, written by a flusher thread
    started on the first line, read back by the admin API."""

    def __init__(self, wm):
        conf = wm.config["request_log"]
        self.enabled = conf["enabled"]
        self.folder = (Path(wm.data_dir) / conf["folder"]).resolve()
        self.max_bytes, self.keep, self.flush_seconds = conf["max_kb"] * 1024, conf["keep"], conf["flush_seconds"]
        self.pending: list[bytes] = []
        self.dropped = 0  # lines lost since the last one the log mentioned
        self.told_at = float("-inf")
        self.cond = threading.Condition()  # guards pending, dropped, thread, closed
        self.file_lock = threading.Lock()  # guards the file: writing, rotating, opening for a read
        self.fd, self.size = None, 0
        self.thread, self.closed = None, False

    # -- writing ---------------------------------------------------------------------------------
    def add(self, request) -> None:
        line = json_dumps({"time": request.time, "id": request.id, "method": request.method[:16],
                           "route": request.route, "status": request.status, "ms": round(request.seconds * 1000, 1),
                           "user": request.user_id, "client": request.client}).encode("utf-8") + b"\n"
        with self.cond:
            if self.closed:
                return
            if len(self.pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self.pending.append(line)
            if self.thread is None:  # started here, not at startup: a served app that was never start()ed logs too
                self.thread = threading.Thread(target=self._run, name="request-log", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while True:
            with self.cond:
                if not self.closed:
                    self.cond.wait(self.flush_seconds)
                closed = self.closed
            self.flush()
            if closed:
                return

    def flush(self) -> None:
        """Write every queued line now (the flusher does every flush_seconds; the admin API before
        it reads)."""
        with self.file_lock:
            with self.cond:
                batch, self.pending = self.pending, []
            if not batch:
                return
            data = b"".join(batch)
            try:
                if self.fd is None:
                    self._open()
                if self.size and self.size + len(data) > self.max_bytes:
                    self._rotate()
                os.write(self.fd, data)
                self.size += len(data)
            except OSError as e:
                self._close()  # reopened for the next batch: the disk may have room by then
                with self.cond:
                    self.dropped += len(batch)
                    dropped = self.dropped
                    if time.monotonic() - self.told_at >= 60:  # once a minute, not per batch
                        self.told_at, self.dropped = time.monotonic(), 0
                    else:
                        dropped = 0
                if dropped:
                    log.warning("cannot write the request log %s (%s): %d line(s) lost", self.folder / LOG_NAME,
                                e.strerror or e, dropped)

    def _open(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fd = os.open(self.folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.size = os.fstat(self.fd).st_size

    def _close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def _rotate(self) -> None:
        """requests.log -> .1 -> .2 ... -> .keep (the oldest is replaced). Renames keep each file's
        inode, which the admin API's cursors name: a page stays where it was across a rotation."""
        self._close()
        for n in range(self.keep - 1, 0, -1):
            older = self.folder / f"{LOG_NAME}.{n}"
            if older.exists():
                os.replace(older, self.folder / f"{LOG_NAME}.{n + 1}")
        os.replace(self.folder / LOG_NAME, self.folder / f"{LOG_NAME}.1")
        self._open()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            thread = self.thread
            self.cond.notify_all()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()
        with self.file_lock:
            self._close()

    # -- reading ---------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """The log files, newest first."""
        return [self.folder / LOG_NAME] + [self.folder / f"{LOG_NAME}.{n}" for n in range(1, self.keep + 1)]

    def page(self, matches, limit: int, before: str | None, since: str | None) -> tuple[list, str | None]:
        """The newest ``limit`` lines that ``matches``, before the cursor, newest first, and the
        cursor of the next page (None: no more). Files are read backwards a block at a time, so
        memory holds a block and a page, whatever the files hold. ``since``: lines are in the
        order requests finished, so the first line older than it ends the list."""
        start = decode_cursor(before) if before else None
        self.flush()
        opened = []
        with self.file_lock:  # opened together: a rotation now moves the files, not what we read
            for path in self.files():
                try:
                    f = open(path, "rb")
                except FileNotFoundError:
                    continue
                stat = os.fstat(f.fileno())  # its size now: a batch written while we read is not half read
                opened.append((f, stat.st_ino, stat.st_size))
        try:
            files = opened
            if start is not None:  # the file the cursor points into, wherever rotation put it
                inodes = [inode for _, inode, _ in opened]
                if start[0] not in inodes:
                    return [], None  # rotated away since
                files = opened[inodes.index(start[0]):]
            items, next_at = [], None
            for i, (f, inode, size) in enumerate(files):
                end = min(start[1], size) if (i == 0 and start is not None) else size
                for offset, line in lines_backwards(f, end):
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue  # a line torn by a crash
                    if not isinstance(entry, dict):
                        continue
                    if since is not None and str(entry.get("time")) < since:
                        return items, None
                    if not matches(entry):
                        continue
                    if len(items) == limit:
                        return items, next_at
                    items.append(entry)
                    next_at = encode_cursor(inode, offset)
            return items, None
        finally:
            for f, _, _ in opened:
                f.close()


def lines_backwards(f, end: int):
    """(offset, line) of each whole line of ``f`` that ends at or before ``end``, last first,
    reading a block at a time."""
    position, tail = end, b""
    while position > 0:
        size = min(READ_BLOCK, position)
        position -= size
        f.seek(position)
        block = f.read(size) + tail
        lines = block.split(b"\n")
        tail = lines.pop(0)  # maybe the end of a line that starts in the block before
        offset = position + len(tail) + 1
        found = []
        for line in lines:
            found.append((offset, line))
            offset += len(line) + 1
        for offset, line in reversed(found):
            if line:
                yield offset, line
    if tail:
        yield 0, tail


def encode_cursor(inode: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{inode}:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """(inode of its file, offset) of the last line a page returned: the next page is what comes
    before it. A 400 for anything else."""
    try:
        inode, offset = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        inode, offset = int(inode), int(offset)
        if inode < 0 or offset < 0:
            raise ValueError
        return inode, offset
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError(400, "invalid_cursor", "before: not a cursor of this list; pass the `next` of the previous page.")


def filters(query) -> tuple:
    """(matches(entry), since) from ``?status=&user=&path=&from=&to=``, checked."""
    status = (query.get("status") or "").strip().lower()
    if status and not STATUS_FILTER.fullmatch(status):
        raise ApiError(400, "invalid_field", f"status: a status such as 404, or a class such as 5xx; got {status[:20]!r}")
    user = (query.get("user") or "").strip() or None
    path = (query.get("path") or "").strip() or None
    since = parse_time(query["from"], "from") if query.get("from") else None
    until = parse_time(query["to"], "to") if query.get("to") else None
    if since is not None and until is not None and since >= until:  # an empty window looked like a quiet log
        raise ApiError(400, "invalid_range", f"from ({query['from']}) must be before to ({query['to']})")

    def matches(entry: dict) -> bool:
        if status and not (str(entry.get("status")) == status or
                           status.endswith("xx") and str(entry.get("status", ""))[:1] == status[0]):
            return False
        if user is not None and entry.get("user") != user:
            return False
        if path is not None and not str(entry.get("route") or "").startswith(path):
            return False
        return until is None or str(entry.get("time")) < until

    return matches, since


@hookimpl
def register_services(register):
    register("request_log", RequestLog)


@hookimpl
def request_finished(request, wm):
    requests = wm.service("request_log")
    if requests is not None and requests.enabled:
        requests.add(request)


@hookimpl
def routes(app, wm):
    requests = wm.service("request_log")

    @app.get("/api/v1/admin/logs", api=Api(
        "Page back through the request log, newest first", auth="admin",
        query={"status": string(pattern="^[1-5]([0-9][0-9]|xx)$", description="404, or a class: 5xx"),
               "user": string(description="a user's id"), "path": string(description="start of a route template"),
               "from": string(format="date-time"), "to": string(format="date-time"),
               "limit": integer(1, 500, default=50), "before": string(description="the `next` of the previous page")},
        responses={200: page(LOG_LINE)}))
    def read_logs():
        require_admin(wm)
        matches, since = filters(bottle.request.query)
        limit, before = page_args(50, 500)
        items, cursor = requests.page(matches, limit, before, since)
        return {"items": items, "next": cursor}


@hookimpl
def shutdown(wm):
    requests = wm.service("request_log")
    if requests is not None:
        requests.close()
