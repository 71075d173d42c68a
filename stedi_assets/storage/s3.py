"""An S3 bucket prefix as a store (AWS, or any S3-compatible server through a custom endpoint).

Credentials and region come from the standard AWS chain (environment, profile, instance role); the
endpoint from `endpoint_url`, else AWS_ENDPOINT_URL. Transient faults (HTTP 500/503, throttling,
connection resets) are retried with bounded exponential backoff by botocore's standard retry mode
(AWS_MAX_ATTEMPTS attempts, default MAX_ATTEMPTS; the Glue client and the Iceberg FileIO use the same);
anything else becomes one StoreError line naming the bucket and endpoint, never a credential.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .stores import StoreError

MAX_ATTEMPTS = 6  # botocore "standard" mode: exponential backoff with jitter, capped at 20 s
DUCKDB_HTTP_RETRIES = 6


def max_attempts() -> int:
    """Attempts per S3 or Glue request: AWS_MAX_ATTEMPTS (the AWS SDKs' own setting), else MAX_ATTEMPTS."""
    try:
        return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS") or MAX_ATTEMPTS))
    except ValueError:
        return MAX_ATTEMPTS


def boto_config(endpoint: str | None = None) -> Config:
    """Retries, timeouts and (for an S3-compatible endpoint) path-style addressing of every boto3 client."""
    return Config(
        retries={"max_attempts": max_attempts(), "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"} if endpoint else None,
    )


NOT_FOUND = ("404", "NoSuchKey", "NotFound")

# Why a call failed, in a few words, by the error code the service or SDK gave: boto3's (S3 and Glue) and
# the AWS SDK for C++'s inside pyarrow (the Iceberg FileIO).
REASONS = {
    "NoSuchBucket": "the bucket does not exist",
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "AccessDenied": "access denied",
    "AccessDeniedException": "access denied",
    "403": "access denied",
    "ACCESS_DENIED": "access denied",
    "InvalidAccessKeyId": "the access key is not known",
    "UnrecognizedClientException": "the access key is not known",
    "INVALID_ACCESS_KEY_ID": "the access key is not known",
    "SignatureDoesNotMatch": "the secret key does not match",
    "InvalidSignatureException": "the secret key does not match",
    "SIGNATURE_DOES_NOT_MATCH": "the secret key does not match",
    "NETWORK_CONNECTION": "cannot connect",
    "EndpointConnectionError": "cannot connect",
    "NoCredentialsError": "no AWS credentials found (environment, profile or role)",
}


def _client_error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def failure_reason(err: Exception) -> str:
    """Why an S3 or Glue call failed, in a few words; never a credential nor the SDK's detail."""
    if isinstance(err, ClientError):
        code = _client_error_code(err)
        return REASONS.get(code, code or "error")
    if isinstance(err, Boto3Error):  # transfer errors wrap the ClientError's text
        return (
            "the bucket does not exist"
            if "NoSuchBucket" in str(err)
            else "access denied"
            if "AccessDenied" in str(err) or "403" in str(err)
            else type(err).__name__
        )
    if isinstance(err, PermissionError):
        return "access denied"
    if isinstance(err, OSError):  # pyarrow: "When ... in bucket 'b': AWS Error ACCESS_DENIED during ..."
        aws_error = re.search(r"AWS Error ([A-Z_]+)", str(err))
        if aws_error:
            return REASONS.get(aws_error.group(1), aws_error.group(1).lower().replace("_", " "))
        return "not found" if isinstance(err, FileNotFoundError) else type(err).__name__
    return REASONS.get(type(err).__name__, type(err).__name__)


@functools.lru_cache(maxsize=16)
def _client(endpoint: str | None, _credentials: str):
    """One boto3 session and client per endpoint and credentials (making one takes ~0.2 s; both are
    safe to share between threads)."""
    session = boto3.session.Session()
    client = session.client(
        "s3", endpoint_url=endpoint, region_name=session.region_name or "us-east-1", config=boto_config(endpoint)
    )
    return session, client


def credentials_fingerprint() -> str:
    # A new key in the environment must get a new client; hash it so no secret sits in the cache key.
    material = "|".join(
        os.environ.get(k, "")
        for k in (
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_DEFAULT_REGION",
            "AWS_MAX_ATTEMPTS",
        )
    )
    return hashlib.sha256(material.encode()).hexdigest()


class S3Store:
    def __init__(self, uri: str, endpoint_url: str | None = None) -> None:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"not an S3 location: {uri!r} (expected s3://bucket/prefix)")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.session, self.client = _client(endpoint or None, credentials_fingerprint())
        self.endpoint = self.client.meta.endpoint_url

    def __repr__(self) -> str:
        return f"S3Store({self.uri()!r})"

    # -- paths -----------------------------------------------------------------------------------
    def key(self, rel: str = "") -> str:
        return "/".join(p for p in (self.prefix, rel.strip("/")) if p)

    def uri(self, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(rel)}".rstrip("/")

    def _fail(self, action: str, rel: str, err: Exception) -> StoreError:
        return StoreError(
            f"cannot {action} s3://{self.bucket}/{self.key(rel)} at {self.endpoint}: {failure_reason(err)}"
        )

    def _call(self, action: str, rel: str, fn, expected: tuple[str, ...] = (), **kwargs):
        """Call the client; None if it fails with one of the `expected` error codes, else a StoreError."""
        try:
            return fn(**kwargs)
        except ClientError as err:
            if _client_error_code(err) in expected:
                return None
            raise self._fail(action, rel, err) from None
        except (BotoCoreError, Boto3Error) as err:
            raise self._fail(action, rel, err) from None

    def _head(self, rel: str) -> dict | None:
        return self._call(
            "read", rel, self.client.head_object, expected=NOT_FOUND, Bucket=self.bucket, Key=self.key(rel)
        )

    # -- reading ---------------------------------------------------------------------------------
    def exists(self, rel: str = "") -> bool:
        return self._head(rel) is not None

    def is_dir(self, rel: str = "") -> bool:
        prefix = self.key(rel)
        page = self._call(
            "list",
            rel,
            self.client.list_objects_v2,
            Bucket=self.bucket,
            Prefix=f"{prefix}/" if prefix else "",
            MaxKeys=1,
        )
        return page.get("KeyCount", 0) > 0

    def modified(self, rel: str) -> float:
        head = self._head(rel)
        if head is None:
            raise FileNotFoundError(self.uri(rel))
        return head["LastModified"].timestamp()

    def fingerprint(self, rel: str) -> str:
        """What tells a version of object `rel` from another without reading it: its size and ETag (the
        server's digest of its content; see LocalStore.fingerprint). Access needs no part in it, unlike a local
        file's ctime: a GET refused (a bucket policy, IAM) stops the run with a StoreError instead of
        quarantining the object, so no kept read depends on it."""
        head = self._head(rel)
        if head is None:
            raise FileNotFoundError(self.uri(rel))
        return f"{head['ContentLength']}:{head['ETag'].strip(chr(34))}"

    def size(self, rel: str) -> int:
        head = self._head(rel)
        if head is None:
            raise FileNotFoundError(self.uri(rel))
        return head["ContentLength"]

    def _list(self, rel: str, delimiter: str | None):
        prefix = self.key(rel)
        prefix = f"{prefix}/" if prefix else ""
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **({"Delimiter": delimiter} if delimiter else {})}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                yield prefix, page
        except (ClientError, BotoCoreError) as err:
            raise self._fail("list", rel, err) from None

    def list_files(self, prefix: str = "", unlisted: dict[str, OSError] | None = None) -> list[str]:
        """Keys below `prefix` relative to the root (see LocalStore.list_files; a listing of S3 has no
        unlistable folders: a failed LIST is an error of the whole call)."""
        base = len(self.key()) + 1 if self.prefix else 0
        return sorted(
            o["Key"][base:]
            for _, page in self._list(prefix, None)
            for o in page.get("Contents", [])
            if not o["Key"].endswith("/")
        )

    def list_dirs(self, prefix: str = "") -> list[str]:
        return sorted(
            p["Prefix"][len(start) :].strip("/")
            for start, page in self._list(prefix, "/")
            for p in page.get("CommonPrefixes", [])
        )

    def read_bytes(self, rel: str) -> bytes:
        body = self._call("read", rel, self.client.get_object, Bucket=self.bucket, Key=self.key(rel))["Body"]
        return body.read()

    def kind(self, rel: str) -> str:
        """An object is always a regular file (see LocalStore.kind)."""
        return "file"

    def open(self, rel: str) -> BinaryIO:
        """A local, seekable copy of the object (landing files are read line by line); FileNotFoundError
        if it was deleted after it was listed."""
        spool = tempfile.TemporaryFile()
        try:
            self.client.download_fileobj(Bucket=self.bucket, Key=self.key(rel), Fileobj=spool)
        except ClientError as err:
            spool.close()
            if _client_error_code(err) in NOT_FOUND:
                raise FileNotFoundError(errno.ENOENT, "removed after it was listed") from None
            raise self._fail("read", rel, err) from None
        except (BotoCoreError, Boto3Error) as err:
            spool.close()
            raise self._fail("read", rel, err) from None
        spool.seek(0)
        return spool

    # -- writing ---------------------------------------------------------------------------------
    def write_atomic(self, rel: str, data: bytes) -> None:
        """One PUT: S3 replaces an object atomically, readers get the old or the new body."""
        self._call("write", rel, self.client.put_object, Bucket=self.bucket, Key=self.key(rel), Body=data)

    def put_file(self, local: str, rel: str, checksum: str | None = None) -> None:
        extra: dict[str, Any] = {"ExtraArgs": {"Metadata": {"sha256": checksum}}} if checksum else {}
        self._call(
            "write", rel, self.client.upload_file, Filename=str(local), Bucket=self.bucket, Key=self.key(rel), **extra
        )

    def checksum(self, rel: str) -> str | None:
        """The SHA-256 recorded when `rel` was uploaded by put_file, if it exists."""
        head = self._head(rel)
        return None if head is None else head.get("Metadata", {}).get("sha256")

    def mark_folder(self, rel: str) -> None:
        """An empty `rel/` object, so that consoles and listings show the prefix before data arrives."""
        self._call("write", rel, self.client.put_object, Bucket=self.bucket, Key=self.key(rel) + "/", Body=b"")

    def local_path(self, rel: str) -> str | None:
        return None

    def make_dirs(self, rel: str) -> None:
        """Object stores have no folders."""

    # An object store has no file modes: what keeps a lake's _private/ (keys, erasure register) private on
    # S3 is the bucket policy and IAM, which must grant that prefix to the pipeline's role only.
    def make_private(self, rel: str) -> None:
        """Nothing to do here: see the bucket policy above."""

    def write_private(self, rel: str, data: bytes) -> None:
        self.write_atomic(rel, data)

    def delete_tree(self, rel: str) -> None:
        keys = [self.key(rel)] + [self.key(p) for p in self.list_files(rel)]  # the object itself, or a "folder"
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self._call(
                "delete", rel, self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )

    # -- buckets ---------------------------------------------------------------------------------
    def ensure_root(self) -> bool:
        """Create the bucket if it is missing; True if it was created."""
        if self._call("reach bucket", "", self.client.head_bucket, expected=NOT_FOUND, Bucket=self.bucket) is not None:
            return False
        region = self.client.meta.region_name
        kwargs: dict[str, Any] = (
            {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        self._call("create bucket", "", self.client.create_bucket, Bucket=self.bucket, **kwargs)
        return True

    # -- engines ---------------------------------------------------------------------------------
    def duckdb_setup(self) -> list[str]:
        """Statements that let a DuckDB connection read and write this bucket (they hold secrets: never log)."""
        import duckdb_extension_httpfs

        extension = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / "v1.5.5" / "httpfs.duckdb_extension"
        credentials = self.session.get_credentials()
        if credentials is None:
            raise StoreError(f"no AWS credentials found for s3://{self.bucket} (environment, profile or role)")
        frozen = credentials.get_frozen_credentials()
        endpoint = urlparse(self.endpoint)
        options = {
            "KEY_ID": frozen.access_key,
            "SECRET": frozen.secret_key,
            "REGION": self.client.meta.region_name or "us-east-1",
            "ENDPOINT": endpoint.netloc,
            "USE_SSL": "true" if endpoint.scheme == "https" else "false",
            "URL_STYLE": "path" if "amazonaws.com" not in endpoint.netloc else "vhost",
        }
        if frozen.token:
            options["SESSION_TOKEN"] = frozen.token
        body = ", ".join(f"{k} {v}" if k == "USE_SSL" else f"{k} '{v}'" for k, v in options.items())
        return [
            f"LOAD '{extension}'",
            f"CREATE OR REPLACE SECRET stedi_lake (TYPE s3, {body})",
            f"SET http_retries = {DUCKDB_HTTP_RETRIES}",
            "SET http_retry_backoff = 2",
        ]
