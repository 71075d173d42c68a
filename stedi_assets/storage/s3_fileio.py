"""pyiceberg's S3 FileIO for the lake (catalog.py names these classes in the catalog properties).

pyiceberg reads and writes table metadata, manifest lists and manifests through pyarrow's S3 file system (the
AWS SDK for C++). Two things differ from pyiceberg's defaults:
- retries: as many attempts as the lake's boto3 clients (AWS_MAX_ATTEMPTS, else s3.MAX_ATTEMPTS), standard
  backoff, so a throttled or flaky store is survived alike by every client;
- failures: a pyarrow OSError is several clauses of SDK detail; here it becomes one StoreError line naming the
  object, the endpoint and why (access denied, the bucket does not exist, cannot connect, ...).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from pyarrow.fs import AwsStandardS3RetryStrategy
from pyiceberg.io import S3_ENDPOINT
from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

from .s3 import failure_reason, max_attempts
from .stores import StoreError


class ArrowRetries:
    """pyiceberg instantiates a retry strategy by dotted path with no arguments: this is that factory."""

    def __new__(cls):
        return AwsStandardS3RetryStrategy(max_attempts=max_attempts())


@contextmanager
def _one_line(action: str, location: str, endpoint: str):
    try:
        yield
    except FileNotFoundError:
        raise  # pyiceberg asks "does it exist?" by catching this
    except OSError as err:
        raise StoreError(f"cannot {action} {location} at {endpoint}: {failure_reason(err)}") from None


def _guarded(action: str):
    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            with _one_line(action, self.location, self.endpoint):
                return method(self, *args, **kwargs)

        return call

    return wrap


class _S3File(PyArrowFile):
    endpoint = "AWS"

    __len__ = _guarded("read")(PyArrowFile.__len__)
    exists = _guarded("read")(PyArrowFile.exists)
    open = _guarded("read")(PyArrowFile.open)
    create = _guarded("write")(PyArrowFile.create)


class ArrowFileIO(PyArrowFileIO):
    """PyArrowFileIO whose S3 files fail in one line (see the module docstring)."""

    @property
    def endpoint(self) -> str:
        return self.properties.get(S3_ENDPOINT) or "AWS"

    def new_input(self, location: str) -> PyArrowFile:
        file = super().new_input(location)
        if not location.startswith("s3"):
            return file
        s3_file = _S3File(location=location, path=file._path, fs=file._filesystem, buffer_size=file._buffer_size)
        s3_file.endpoint = self.endpoint
        return s3_file

    new_output = new_input  # pyiceberg's own file is both input and output

    def delete(self, location) -> None:
        with _one_line("delete", getattr(location, "location", location), self.endpoint):
            super().delete(location)
