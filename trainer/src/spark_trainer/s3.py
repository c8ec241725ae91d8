"""Object storage, configured from the same environment as the TypeScript workers
(`src/core/store/s3-store.ts`): SPARK_S3_ENDPOINT, SPARK_S3_REGION or AWS_REGION,
SPARK_S3_FORCE_PATH_STYLE, AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. URIs name their bucket, so
the trainer reads batches and writes checkpoints wherever the control plane points it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_URI = re.compile(r"^s3://([^/]+)/(.+)$")
_CHUNK = 8 << 20


class ObjectNotFound(Exception):
    def __init__(self, uri: str) -> None:
        super().__init__(f"no object at {uri}")
        self.uri = uri


class AlreadyExists(Exception):
    """A put-if-absent found an object there."""


@dataclass(frozen=True)
class S3Config:
    endpoint: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None
    force_path_style: bool

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> S3Config:
        endpoint = env.get("SPARK_S3_ENDPOINT") or None
        path_style = env.get("SPARK_S3_FORCE_PATH_STYLE", "")
        return S3Config(
            endpoint=endpoint,
            region=env.get("SPARK_S3_REGION") or env.get("AWS_REGION") or "us-east-1",
            access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
            # Path-style addressing is what versitygw and MinIO need; the default when an endpoint is set.
            force_path_style=endpoint is not None if path_style == "" else path_style == "true",
        )


def parse_uri(uri: str) -> tuple[str, str]:
    match = _URI.match(uri)
    if not match:
        raise ValueError(f"expected an S3 URI like s3://bucket/key, got {uri!r}")
    return match.group(1), match.group(2)


@dataclass(frozen=True)
class Stored:
    """What was written or read: the object's SHA-256 and size."""

    sha256: str
    bytes: int


class ObjectStore:
    """The one S3 client of the trainer. Methods block: callers run them in worker threads."""

    def __init__(self, config: S3Config) -> None:
        self.config = config
        self._s3: Any = boto3.client(
            "s3",
            endpoint_url=config.endpoint,
            region_name=config.region,
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            config=Config(
                s3={"addressing_style": "path" if config.force_path_style else "auto"},
                # The control plane retries whole requests; the client only smooths over a dropped connection.
                retries={"max_attempts": 3, "mode": "standard"},
                # Checksums only where S3 requires them: S3-compatible stores differ in what else they accept.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                max_pool_connections=16,
            ),
        )

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = parse_uri(uri)
        try:
            out = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            raise _mapped(err, uri) from err
        return bytes(out["Body"].read())

    def get_bytes_if_exists(self, uri: str) -> bytes | None:
        try:
            return self.get_bytes(uri)
        except ObjectNotFound:
            return None

    def download(self, uri: str, path: Path) -> Stored:
        """Streams the object to `path`, hashing as it goes."""
        bucket, key = parse_uri(uri)
        try:
            out = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as err:
            raise _mapped(err, uri) from err
        digest = hashlib.sha256()
        size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            for chunk in out["Body"].iter_chunks(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                file.write(chunk)
        return Stored(digest.hexdigest(), size)

    def upload(self, path: Path, uri: str) -> Stored:
        """Uploads a file (multipart when large), hashing it as it is read for the upload."""
        bucket, key = parse_uri(uri)
        with path.open("rb") as file:
            reader = _HashingReader(file)
            # One thread reads the stream, so every byte passes the hash once, in order.
            self._s3.upload_fileobj(reader, bucket, key, Config=_SEQUENTIAL)
        return Stored(reader.digest.hexdigest(), reader.size)

    def put(
        self, uri: str, body: bytes, *, if_absent: bool = False, content_type: str = "application/json"
    ) -> Stored:
        """One PUT. `if_absent`: `If-None-Match: *`, so an object already there is never replaced
        (raises AlreadyExists)."""
        bucket, key = parse_uri(uri)
        extra: dict[str, Any] = {"IfNoneMatch": "*"} if if_absent else {}
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, **extra)
        except ClientError as err:
            if if_absent and _status(err) in (409, 412):
                raise AlreadyExists(uri) from err
            raise _mapped(err, uri) from err
        return Stored(hashlib.sha256(body).hexdigest(), len(body))

    def ensure_bucket(self, bucket: str) -> None:
        try:
            self._s3.head_bucket(Bucket=bucket)
        except ClientError:
            try:
                self._s3.create_bucket(Bucket=bucket)
            except ClientError as err:
                if _code(err) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise


class _HashingReader:
    """A read-only stream for boto3 that hashes what it hands out. It cannot seek, so boto3 reads it
    once, front to back, and keeps each part in memory for its own retries."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self._file.read(n)
        self.digest.update(chunk)
        self.size += len(chunk)
        return chunk


def _sequential_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(use_threads=False, multipart_threshold=64 << 20, multipart_chunksize=64 << 20)


_SEQUENTIAL = _sequential_config()


def sha256_file(path: Path) -> Stored:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return Stored(digest.hexdigest(), size)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _status(err: ClientError) -> int:
    return int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _mapped(err: ClientError, uri: str) -> Exception:
    if _code(err) in ("NoSuchKey", "NotFound", "404") or _status(err) == 404:
        return ObjectNotFound(uri)
    return err
