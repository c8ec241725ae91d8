"""Publishing a committed adapter to an inference server (vLLM's runtime LoRA endpoints).

vLLM reads `lora_path` from its own disk, not from S3, so the adapter is first copied to the
publish folder (a volume both machines mount). Each checkpoint gets its own folder, written under a
temporary name and renamed when complete, so a publish never rewrites files a server is reading.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import httpx

from . import checkpoints
from .checkpoints import STATE_NAME
from .protocol import CheckpointMarker, ProtocolError
from .s3 import ObjectStore

# The optimiser state and the step log stay in S3: an inference server needs only the adapter.
_NOT_SERVED = re.compile(r"^(optimizer[^/]*|" + re.escape(STATE_NAME) + r")$")


def folder_name(model_name: str, uri: str, marker_sha256: str) -> str:
    """`<model name>--<checkpoint name>-<marker hash>`: readable, and unique per commit."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", model_name)
    checkpoint = re.sub(r"[^A-Za-z0-9._-]+", "_", uri.rstrip("/").rsplit("/", 1)[-1])
    return f"{safe}--{checkpoint}-{marker_sha256[:12]}"


def stage_adapter(
    store: ObjectStore,
    uri: str,
    marker: CheckpointMarker,
    marker_sha256: str,
    publish_dir: Path,
    model_name: str,
) -> Path:
    """Copies the checkpoint's adapter files into their own folder under `publish_dir` (verified
    against the marker) and returns that folder; a folder already there is that same copy."""
    target = publish_dir / folder_name(model_name, uri, marker_sha256)
    if target.is_dir():
        return target.resolve()
    publish_dir.mkdir(parents=True, exist_ok=True)
    names = [o.name for o in marker.objects if not _NOT_SERVED.match(o.name)]
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=publish_dir))
    try:
        checkpoints.download(store, uri, marker, staging, names)
        # Readable by an inference server running as another user on the shared volume.
        os.chmod(staging, 0o755)
        try:
            staging.rename(target)
        except OSError:
            # Another publish of the same checkpoint finished first: the same files.
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target.resolve()


async def load_adapter(client: httpx.AsyncClient, base_url: str, model_name: str, lora_path: str) -> None:
    """Unloads `model_name` (whatever it served before; "not found" is fine) and loads it from
    `lora_path`. Failures of the inference server are `publish-failed` (retryable)."""
    base = base_url.rstrip("/")
    unloaded = await _post(client, f"{base}/unload_lora_adapter", {"lora_name": model_name})
    # vLLM answers 400 or 404 for a name it does not serve; 401/403 is a key it wants, 5xx its own trouble.
    if unloaded.status_code >= 500 or unloaded.status_code in (401, 403):
        raise _failed(f"{base}/unload_lora_adapter", unloaded)
    loaded = await _post(
        client, f"{base}/load_lora_adapter", {"lora_name": model_name, "lora_path": lora_path}
    )
    if loaded.status_code != 200:
        raise _failed(f"{base}/load_lora_adapter", loaded)


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, str]) -> httpx.Response:
    try:
        return await client.post(url, json=body)
    except httpx.HTTPError as err:
        raise ProtocolError("publish-failed", f"inferenceBaseURL: {url} did not answer ({err!r})") from None


def _failed(url: str, response: httpx.Response) -> ProtocolError:
    hint = (
        " (the inference server wants an API key: start the trainer with --inference-api-key-env NAME)"
        if response.status_code in (401, 403)
        else ""
    )
    return ProtocolError(
        "publish-failed", f"{url} answered {response.status_code}{hint}: {response.text[:500]}"
    )
