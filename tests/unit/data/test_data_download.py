"""Downloads, offline: a local HTTP server on 127.0.0.1 plays the official servers."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import tarfile
import threading

import pytest

from deepsad.data import registry
from deepsad.data.download import download_file, fetch_dataset, fetch_files, file_checksum
from deepsad.data.registry import DatasetInfo, RemoteFile
from deepsad.errors import DataFileError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several read chunks


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        if self.path == "/cut":
            # promise more than is sent, then hang up: an interrupted transfer
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[:1000])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "good.bin").write_bytes(PAYLOAD)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_accepted(server, tmp_path):
    url, _ = server
    out = tmp_path / "dl" / "sub" / "good.bin"
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    assert download_file(f"{url}/good.bin", out, md5=md5, sha256=sha, progress=False) == out
    assert out.read_bytes() == PAYLOAD
    assert _leftovers(out.parent) == ["good.bin"]
    assert file_checksum(out, "md5") == md5 and file_checksum(out) == sha


def test_wrong_checksum_rejected_nothing_written(server, tmp_path):
    url, _ = server
    out = tmp_path / "dl" / "good.bin"
    with pytest.raises(DataFileError, match="checksum mismatch .* expected sha256 0000"):
        download_file(f"{url}/good.bin", out, sha256="0" * 64, progress=False)
    assert _leftovers(out.parent) == []


def test_existing_file_kept_when_new_download_fails(server, tmp_path):
    url, _ = server
    out = tmp_path / "good.bin"
    out.write_bytes(b"old")
    with pytest.raises(DataFileError):
        download_file(f"{url}/good.bin", out, md5="0" * 32, progress=False)
    assert out.read_bytes() == b"old" and _leftovers(tmp_path) == ["good.bin", "served"]


def test_interrupted_transfer_leaves_no_file(server, tmp_path):
    url, _ = server
    out = tmp_path / "dl" / "cut.bin"
    with pytest.raises(DataFileError, match="could not download cut.bin") as caught:
        download_file(f"{url}/cut", out, progress=False)
    assert "cut off after" in str(caught.value) or "IncompleteRead" in str(caught.value)
    assert _leftovers(out.parent) == []


def test_mirror_fallback_and_http_error(server, tmp_path):
    url, _ = server
    out = tmp_path / "m.bin"
    download_file([f"{url}/missing.bin", f"{url}/good.bin"], out, md5=hashlib.md5(PAYLOAD).hexdigest(), progress=False)
    assert out.read_bytes() == PAYLOAD
    with pytest.raises(DataFileError, match="HTTP 404"):
        download_file(f"{url}/missing.bin", tmp_path / "x.bin", progress=False)


def test_offline_error_names_file_and_folder(tmp_path):
    # a port nobody listens on: what an offline machine sees
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(DataFileError) as caught:
        download_file(f"http://127.0.0.1:{port}/thyroid.mat", tmp_path / "odds" / "thyroid.mat", timeout=5, progress=False)
    message = str(caught.value)
    assert "could not download thyroid.mat to" in message and str(tmp_path / "odds") in message
    assert "offline" in message and "\n" not in message
    assert _leftovers(tmp_path / "odds") == []


def test_fetch_files_idx_style(server, tmp_path):
    url, served = server
    (served / "a.gz").write_bytes(b"AAAA")
    info = DatasetInfo(
        name="toy", kind="images", title="toy", folder="toy",
        files=(RemoteFile("a.gz", (f"{url}/a.gz",), md5=hashlib.md5(b"AAAA").hexdigest()),),
    )
    root = tmp_path / "root"
    assert fetch_files(info, root, progress=False) == [root / "toy" / "a.gz"]
    assert fetch_files(info, root, progress=False) == []  # present: nothing to do


def test_fetch_files_archive_extracts_only_expected_members(server, tmp_path):
    url, served = server
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in [("batches/one", b"1"), ("batches/two", b"2"), ("../escape", b"x"), ("batches/extra", b"e")]:
            member = tarfile.TarInfo(name)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
    blob = buffer.getvalue()
    (served / "arch.tar.gz").write_bytes(blob)
    info = DatasetInfo(
        name="arch", kind="images", title="arch", folder="arch",
        files=(RemoteFile("batches/one"), RemoteFile("batches/two")),
        archive=RemoteFile("arch.tar.gz", (f"{url}/arch.tar.gz",), md5=hashlib.md5(blob).hexdigest()),
    )
    root = tmp_path / "root"
    fetched = fetch_files(info, root, progress=False)
    assert [p.read_bytes() for p in fetched] == [b"1", b"2"]
    assert _leftovers(root / "arch") == ["batches"] and _leftovers(root / "arch" / "batches") == ["one", "two"]
    assert not (root / "escape").exists() and not (tmp_path / "escape").exists()


def test_fetch_dataset_uses_registry_urls(server, tmp_path, monkeypatch):
    url, served = server
    mat = b"not really a mat file"
    (served / "cardio.mat").write_bytes(mat)
    info = registry.BUILTIN_DATASETS["cardio"]
    patched = DatasetInfo(**{**info.__dict__, "files": (RemoteFile("cardio.mat", (f"{url}/cardio.mat",),
                                                                   sha256=hashlib.sha256(mat).hexdigest()),)})
    monkeypatch.setitem(registry.BUILTIN_DATASETS, "cardio", patched)
    assert fetch_dataset("cardio", tmp_path, progress=False) == [tmp_path / "odds" / "cardio.mat"]
    # the real entry carries the published sha256 of the stored copy
    assert info.files[0].sha256 == "5e568b6a73711012c481fa6cc984ab9c68e9a4fa44d6aeb3b43efa381c3f695b"


def test_real_cifar_checksum_matches_published_value():
    assert registry.BUILTIN_DATASETS["cifar10"].archive.md5 == "c58f30108f718f92721af3b95e74349a"
