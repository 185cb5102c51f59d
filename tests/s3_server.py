"""A local S3-compatible server (moto) on 127.0.0.1 for the object-storage tests, with a log of what it served.

Import the fixtures into a test module (`from s3_server import s3_server, s3_uri  # noqa: F401`); no conftest
needed. `s3_uri` points LanceDB at the server the way a user would, with the standard AWS environment variables,
and gives every test its own prefix in one bucket. `S3Server.on_request` lets a test act on a request before it
is served (e.g. kill a writer at its commit) and `requests` lists every request with its conditional headers.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

import pytest

from ports import free_port

BUCKET = "reason-iad-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@dataclass(frozen=True)
class Request:
    """One request the server received: method, path (`/bucket/key`), and its `If-None-Match`/`If-Match`."""

    method: str
    path: str
    if_none_match: str | None
    if_match: str | None


class S3Server:
    """moto's S3 in a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self.bucket = BUCKET
        self.requests: list[Request] = []
        self.on_request = None  # callable(Request) -> None, or True to refuse the request with a 503
        self.ignore_conditions = False  # True: behave like a store without conditional puts (drops If-None-Match)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.port = free_port()
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The server's URL."""
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment variables that point LanceDB (and boto3) at this server."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            **CREDENTIALS,
        }

    def storage_options(self) -> dict[str, str]:
        """The same settings as LanceDB `storage_options` (lower-case keys)."""
        return {
            "aws_endpoint": self.endpoint,
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            "aws_region": CREDENTIALS["AWS_REGION"],
            "allow_http": "true",
        }

    def client(self, service: str = "s3"):
        """A boto3 client of this server (moto serves DynamoDB on the same port)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )

    def keys(self, prefix: str, bucket: str = BUCKET) -> list[str]:
        """Every object key under `prefix`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def _app(self, environ, start_response):
        request = Request(
            environ["REQUEST_METHOD"],
            environ.get("PATH_INFO", ""),
            environ.get("HTTP_IF_NONE_MATCH"),
            environ.get("HTTP_IF_MATCH"),
        )
        self.requests.append(request)
        if self.ignore_conditions:
            environ.pop("HTTP_IF_NONE_MATCH", None)
        hook = self.on_request
        if hook is not None and hook(request):
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"refused by the test"]
        return self._moto(environ, start_response)

    def start(self) -> S3Server:
        """Serve in a daemon thread and create the test bucket."""
        self._thread.start()
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def stop(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._thread.join(timeout=10)


def prefix_of(nodeid: str) -> str:
    """An object-key prefix for a test id (letters, digits, '-' only)."""
    return re.sub(r"[^a-z0-9]+", "-", nodeid.lower()).strip("-")[-80:]


@pytest.fixture(scope="session")
def s3_server():
    """One moto S3 server for the session."""
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_uri(s3_server, monkeypatch, request):
    """`s3://<bucket>/<test's own prefix>`, with the AWS variables set for LanceDB in this process."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    s3_server.on_request, s3_server.ignore_conditions = None, False
    yield f"s3://{BUCKET}/{prefix_of(request.node.nodeid)}"
    s3_server.on_request, s3_server.ignore_conditions = None, False
