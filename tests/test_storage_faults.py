"""Storage faults seen from outside: an emptied data file stops startup with one line (never
"no data"), a write that fails (full disk, read-only folder) is a 503 storage_unavailable that
/test/health reports, and a data folder the server cannot write stops startup with one line.

A real read-only folder needs a user that chmod stops: as root (CI) the server runs as uid 1000
in a user namespace (`unshare`), where the root-owned folder is its own and mode 0500 binds
it. Each such test's id says which way it ran; the disk-full tests make file writes fail, as
test_storage_files.py's disk_full does."""

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

import wellmate

from conftest import ROOT, Client, Served, ServerProcess, assert_error, free_port
from test_core import write_config
from test_storage_files import disk_full

DATA = "/api/v1/health/data"
HEALTH = "/api/v1/test/health"


def started_or_exited(config_path, port, prefix=()) -> tuple[int | None, str]:
    """Run the server; (exit status, output) once it exits, or (None, output) if it answered."""
    proc = subprocess.Popen([*prefix, sys.executable, str(ROOT / "wellmate.py"), "--config", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{HEALTH}", timeout=2):
                    proc.kill()  # it started: that is all we ask here
                    return None, proc.communicate(timeout=30)[0]
            except OSError:
                time.sleep(0.05)
        return proc.returncode, proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()


def one_line_error(status, output, *words):
    assert status == 2, f"the server started (or failed otherwise) instead of refusing: {status}\n{output}"
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    for word in words:
        assert word in lines[0], output


# -- point 11: a 0-byte data file ------------------------------------------------------------


def a_served_folder(tmp_path, port, **overrides):
    """A data folder with a user, a session and a record in every file, written by the app over
    HTTP (served in this process: stopping it needs no signal)."""
    config = write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}, **overrides})
    wm = wellmate.create_app(config)
    served = Served(wm)
    try:
        token = served.client.register("alice")["access_token"]
        assert served.client.post(DATA, {"type": "weight", "value": 70}, token=token).status == 201
        assert served.client.post("/api/v1/health/sessions", {"agent": "physical"}, token=token).status == 201
        user_id = wm.service("auth").tokens.verify_access(token)["sub"]
    finally:
        served.stop()
        wm.close()
    return config, user_id


@pytest.mark.parametrize("name", ["collections/users.jsonl", "collections/sessions.jsonl", "collections/records.jsonl",
                                  "users.json"])
def test_an_empty_data_file_stops_startup_with_one_line(tmp_path, name):
    """users.json: a folder of the version before collections, which the first start migrates."""
    port = free_port()
    if name.endswith(".jsonl"):
        config, _ = a_served_folder(tmp_path, port)
    else:
        config = write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}})
    path = tmp_path / "data" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # what a crash between truncate and write, or a bad copy, leaves
    status, output = started_or_exited(config, port)
    one_line_error(status, output, path.name, "empty", "restore it from a backup", "delete it")
    assert path.read_bytes() == b""  # nothing was written over it
    path.unlink()  # "delete it if you mean to start without it": then it starts
    status, output = started_or_exited(config, port)
    assert status is None, output


def test_an_empty_secret_key_stops_startup_with_one_line(tmp_path):
    port = free_port()
    config, _ = a_served_folder(tmp_path, port, auth={"secret": ""})
    key = tmp_path / "data" / "secret.key"
    assert key.read_text().strip()
    key.write_bytes(b"")
    status, output = started_or_exited(config, port)
    one_line_error(status, output, "secret.key", "empty", "restore it from a backup", "delete it")
    key.unlink()  # a new secret: everyone logs in again
    status, output = started_or_exited(config, port)
    assert status is None, output
    assert key.read_text().strip()


# -- point 12: writes that fail ----------------------------------------------------------------


def test_a_full_disk_is_a_503_for_every_write_and_health_says_so(make_wm, serve, monkeypatch):
    """Way: os.replace patched to fail with ENOSPC (root or not)."""
    served = serve(make_wm())
    client = served.client
    token = client.register("alice")["access_token"]
    kept = client.post(DATA, {"type": "weight", "value": 70}, token=token).json
    assert client.get(HEALTH).json["status"] == "ok"

    disk_full(monkeypatch)
    for method, path, body in (("POST", DATA, {"type": "weight", "value": 71}),
                               ("POST", "/api/v1/auth/register", {"username": "bob", "password": "correct horse"}),
                               ("POST", "/api/v1/health/sessions", {"agent": "physical"}),
                               ("DELETE", f"{DATA}/{kept['id']}", None)):
        r = client.request(method, path, body=body, token=token)
        assert_error(r, 503, "storage_unavailable")
        assert "nothing was saved" in r.json["error"]["message"]
        assert int(r.headers["Retry-After"]) > 0
    health = client.get(HEALTH)
    assert health.status == 503 and health.json["status"] == "unavailable", health.text
    assert "No space left on device" in health.json["checks"]["storage"]
    assert health.json["error"]["code"] == "storage_unavailable"
    # Reads still work, and show nothing of the failed writes.
    items = client.get(DATA, token=token).json["items"]
    assert [r["id"] for r in items] == [kept["id"]]

    monkeypatch.undo()  # room again: health tries a write of its own and is ok again, with no other write
    health = client.get(HEALTH)
    assert health.status == 200 and health.json["status"] == "ok" and health.json["checks"]["storage"] == "ok"
    assert client.post(DATA, {"type": "weight", "value": 72}, token=token).status == 201
    assert not [p.name for p in served.wm.data_dir.iterdir() if "probe" in p.name]  # the test file is gone


def read_only_way():
    """How a test can make a folder read-only for the server: (way, command prefix)."""
    if os.geteuid() != 0:
        return "chmod 0500", ()
    prefix = ("unshare", "--user", "--map-user=1000", "--map-group=1000")
    if shutil.which("unshare") and subprocess.run([*prefix, "true"], capture_output=True).returncode == 0:
        return "chmod 0500, server as uid 1000 in a user namespace (root)", prefix
    return None, None


WAY, PREFIX = read_only_way()
needs_read_only = pytest.mark.skipif(WAY is None, reason="root without user namespaces: chmod cannot stop "
                                                         "writes (the disk-full tests cover the 503)")


@needs_read_only
@pytest.mark.parametrize("way", [WAY])
def test_a_data_folder_made_read_only_while_serving_is_a_503_then_ok_again(tmp_path, way):
    port = free_port()
    server = ServerProcess(write_config(tmp_path, {"server": {"host": "127.0.0.1", "port": port}}), port,
                           prefix=PREFIX)
    client = Client(port)
    folder = tmp_path / "data"
    try:
        token = client.register("alice")["access_token"]
        kept = client.post(DATA, {"type": "weight", "value": 70}, token=token).json
        # As a read-only mount would: the folders and the files appended to in place.
        read_only = [sub for sub in (folder, folder / "collections", folder / "messages") if sub.exists()]
        files = [f for sub in read_only[1:] for f in sub.iterdir()]
        for sub in read_only:
            sub.chmod(0o500)
        for f in files:
            f.chmod(0o400)
        try:
            assert_error(client.post(DATA, {"type": "weight", "value": 71}, token=token), 503, "storage_unavailable")
            assert_error(client.post("/api/v1/auth/register", {"username": "bob", "password": "correct horse"}),
                         503, "storage_unavailable")
            health = client.get(HEALTH)
            assert health.status == 503 and "not readable and writable" in health.json["checks"]["storage"], health.text
            assert str(folder) not in health.text  # health answers anyone: no paths
            assert [r["id"] for r in client.get(DATA, token=token).json["items"]] == [kept["id"]]
        finally:
            for sub in read_only:
                sub.chmod(0o700)
            for f in files:
                f.chmod(0o600)
        assert client.post(DATA, {"type": "weight", "value": 72}, token=token).status == 201
        assert client.get(HEALTH).json["status"] == "ok"
    finally:
        server.proc.kill()  # (a clean SIGTERM stop is another test's business)
        server.proc.wait()


@needs_read_only
@pytest.mark.parametrize("way", [WAY])
def test_starting_on_a_read_only_data_folder_is_one_line(tmp_path, way):
    port = free_port()
    config, _ = a_served_folder(tmp_path, port)
    folder = tmp_path / "data"
    folder.chmod(0o500)
    try:
        status, output = started_or_exited(config, port, prefix=PREFIX)
    finally:
        folder.chmod(0o700)
    one_line_error(status, output, str(folder), "writable")



def test_a_stream_whose_reply_cannot_be_stored_ends_with_a_storage_unavailable_event(make_wm, serve, monkeypatch):
    """The disk fills while a streamed reply is under way: the 200 and the deltas are out, so the
    503 every other route gives is the stream's `event: error` (it was a cut stream, no last
    chunk, and a traceback in the log)."""
    import stat

    from fakes.openai_server import FakeOpenAI, chars
    from test_chat_limits import open_stream
    from test_chat_upstream import signed_in, upstream_config

    with FakeOpenAI(reply="好的，我们慢慢说。", mode="stall_mid_stream", fault_after=1, chunker=chars(2),
                    stall_seconds=60) as model:
        client = serve(make_wm(upstream_config(model.url, timeout=60))).client
        stream, session_id = open_stream(client.port, signed_in(client))
        real_write, real_pwrite = os.write, os.pwrite

        def no_space_in_files(fd, data, *offset):  # sockets and waitress's wake-up pipe still work
            if stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(28, "No space left on device")
            return real_pwrite(fd, data, *offset) if offset else real_write(fd, data)

        monkeypatch.setattr(os, "write", no_space_in_files)
        monkeypatch.setattr(os, "pwrite", no_space_in_files)
        model.release()
        received = b""
        while data := stream.recv(4096):  # to the end: the server closes a stream's connection
            received += data
        stream.close()
    assert b"event: error" in received, received
    error = json.loads(received.split(b"event: error\ndata: ", 1)[1].split(b"\n", 1)[0])
    assert error["code"] == "storage_unavailable" and "not saved" in error["message"], error
    assert received.endswith(b"\r\n0\r\n\r\n"), received[-80:]  # a whole chunked body: it ended, not cut
