"""Proxies: every request, reconciliation listings included, goes through the proxy."""

from __future__ import annotations

import base64
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from baseten_training_async import APIConnectionError, AsyncTrainingClient, InvalidInputError
from baseten_training_async.testing import FakeTrainingAPI, Route
from tests.integration.conftest import FAST_RETRIES

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-encoding",
}


class ForwardingProxy:
    """A plain-http forward proxy on loopback that records each request it relays.

    With ``upstream`` it is a reverse proxy instead (every path to that base URL),
    and with ``tls`` it serves https.
    """

    def __init__(self, upstream: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.upstream = upstream
        self.tls = tls
        self.seen: list[tuple[str, str]] = []
        self.proxy_auth: list[str | None] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._upstream: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        self._upstream = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._upstream is not None:
            await self._upstream.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        if self.upstream is None:
            # An http proxy gets the absolute URL as the request target.
            target = str(request.url)
            assert request.url.is_absolute()
        else:
            target = self.upstream + request.rel_url.raw_path_qs
        self.seen.append((request.method, request.url.path))
        self.proxy_auth.append(request.headers.get("Proxy-Authorization"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        assert self._upstream is not None
        async with self._upstream.request(
            request.method,
            target,
            headers=headers,
            data=await request.read(),
            allow_redirects=False,
        ) as upstream:
            body = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            return web.Response(status=upstream.status, headers=out, body=body)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardingProxy]:
    relay = ForwardingProxy()
    await relay.start()
    yield relay
    await relay.stop()


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def _create_with_reconciliation(client: AsyncTrainingClient, api: FakeTrainingAPI) -> None:
    project = await client.projects.upsert("p")
    # A 502 after the job was made: the outcome is unknown, so the job is looked up.
    api.inject("status", route=Route.CREATE_JOB, status=502, commit=True, times=1)
    job = await client.jobs.create(project.id, {"name": "via", "image": {"base_image": "x"}})
    assert (await client.jobs.retrieve(project.id, job.id)).name == "via"
    assert client.stats().adopted == 1


async def test_every_call_goes_through_the_proxy_from_the_environment(
    api: FakeTrainingAPI, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, commit_window=2
    ) as client:
        await _create_with_reconciliation(client, api)
    methods = [method for method, _ in proxy.seen]
    assert methods == ["POST", "POST", "GET", "GET"]  # upsert, create, listing, retrieve
    assert proxy.seen[2][1].endswith("/jobs")  # the reconciliation listing
    # Everything the fake saw came through the proxy.
    assert len(api.requests) == len(proxy.seen)


async def test_no_proxy_bypasses_the_environment_proxy(
    api: FakeTrainingAPI, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, commit_window=2
    ) as client:
        await _create_with_reconciliation(client, api)
    assert proxy.seen == []
    assert len(api.requests) == 4


async def test_trust_env_false_ignores_the_environment(
    api: FakeTrainingAPI, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    async with AsyncTrainingClient(api.api_key, base_url=api.url, trust_env=False) as client:
        await client.projects.upsert("p")
    assert proxy.seen == []


async def test_an_explicit_proxy_with_credentials(
    api: FakeTrainingAPI, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "*")  # the explicit proxy wins over the environment
    with_user = proxy.url.replace("http://", "http://user:secret@")
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, commit_window=2, proxy=with_user
    ) as client:
        await _create_with_reconciliation(client, api)
    assert [method for method, _ in proxy.seen] == ["POST", "POST", "GET", "GET"]
    expected = "Basic " + base64.b64encode(b"user:secret").decode()
    assert proxy.proxy_auth == [expected] * 4


def test_proxy_and_ssl_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="proxy"):
        AsyncTrainingClient("key", proxy="127.0.0.1:3128")
    with pytest.raises(InvalidInputError, match="CA bundle"):
        AsyncTrainingClient("key", ssl=tmp_path / "missing.pem")
    with pytest.raises(InvalidInputError, match="ssl"):
        AsyncTrainingClient("key", ssl=42)  # type: ignore[arg-type]
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate")
    with pytest.raises(InvalidInputError, match="CA bundle"):
        AsyncTrainingClient("key", ssl=empty)
    # An SSLContext is taken as it is.
    context = ssl.create_default_context()
    assert AsyncTrainingClient("key", ssl=context).base_url == "https://api.baseten.co"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made by the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


async def test_a_ca_bundle_verifies_every_call_over_tls(
    api: FakeTrainingAPI, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    front = ForwardingProxy(upstream=api.url, tls=server_tls)
    await front.start()
    try:
        # The system's CAs do not know this certificate: refused before anything is sent.
        async with AsyncTrainingClient(api.api_key, base_url=front.url, max_retries=0) as client:
            with pytest.raises(APIConnectionError, match="could not connect") as info:
                await client.projects.upsert("p")
            assert info.value.maybe_committed is False
        assert front.seen == []
        # With the bundle, every call (the reconciliation listing included) is verified.
        async with AsyncTrainingClient(
            api.api_key, base_url=front.url, ssl=cert, retry_policy=FAST_RETRIES, commit_window=2
        ) as client:
            await _create_with_reconciliation(client, api)
        assert [method for method, _ in front.seen] == ["POST", "POST", "GET", "GET"]
        # An SSLContext works the same way.
        context = ssl.create_default_context(cafile=str(cert))
        async with AsyncTrainingClient(api.api_key, base_url=front.url, ssl=context) as client:
            assert (await client.projects.list())[0].name == "p"
    finally:
        await front.stop()
