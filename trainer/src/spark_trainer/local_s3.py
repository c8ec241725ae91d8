"""A throwaway S3 on loopback for tests and benchmarks: versitygw (which `npm run setup` builds into
`.tools/bin`) over a folder, on a free port. Production uses any S3; this is never started there."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .s3 import S3Config

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    """Returns once `port` accepts connections; raises if `process` exits first or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def versitygw_binary() -> str:
    for candidate in (
        os.environ.get("SPARK_VERSITYGW"),
        str(REPO / ".tools/bin/versitygw"),
        shutil.which("versitygw"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise FileNotFoundError(
        "versitygw is not installed: run `npm run setup` (it builds .tools/bin/versitygw)"
    )


@contextmanager
def local_s3(
    root: Path, access_key: str = "sparktest", secret_key: str = "sparktestsecret"
) -> Iterator[S3Config]:
    """versitygw over `root` (its log at `root/versitygw.log`) until the block ends."""
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key}
    with (root / "versitygw.log").open("wb") as log:
        # Without --keep-alive versitygw closes every connection after one request.
        argv = [versitygw_binary(), "--port", f"127.0.0.1:{port}", "--keep-alive", "posix"]
        process = subprocess.Popen(
            [*argv, "--sidecar", str(root / "meta"), str(root / "data")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, process, f"versitygw (see {root / 'versitygw.log'})", timeout=20)
            yield S3Config(
                endpoint=f"http://127.0.0.1:{port}",
                region="us-east-1",
                access_key_id=access_key,
                secret_access_key=secret_key,
                force_path_style=True,
            )
        finally:
            process.terminate()
            process.wait(timeout=10)
