"""URL policy: schemes, private addresses (no DNS beyond /etc/hosts), local file confinement."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tasks.crawl import safety
from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import FetchResult
from tasks.crawl.safety import Refusal, Target, address_class, check_host, check_url

FetchOne = Callable[..., FetchResult]


def _host_check(host: str, config: CrawlConfig | None = None, port: int = 80) -> Refusal | None:
    return asyncio.run(check_host(host, port, config or CrawlConfig()))


def _fake_resolver(monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    async def resolve(host: str, port: int, timeout_s: float) -> list[Any]:
        if isinstance(answer, BaseException):
            raise answer
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(safety, "_resolve", resolve)


# --- addresses -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("100.100.100.200", "a cloud metadata address"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
    ],
)
def test_default_policy_refuses_non_public_ip_literals(host: str, kind: str) -> None:
    refusal = _host_check(host)
    assert refusal == Refusal(f"blocked address: {ipaddress.ip_address(host)} is {kind}")


@pytest.mark.parametrize("host", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_ip_literals_pass_without_dns(host: str) -> None:
    assert _host_check(host) is None
    assert address_class(ipaddress.ip_address(host)) is None


def test_localhost_is_refused_by_name() -> None:
    refusal = _host_check("localhost")
    assert refusal is not None and refusal.reason in {
        "blocked address: 127.0.0.1 is loopback",
        "blocked address: ::1 is loopback",
    }


def test_url_forms_of_loopback_are_refused() -> None:
    target = check_url("http://[::1]:8080/poster.jpg", CrawlConfig())
    assert isinstance(target, Target) and (target.host, target.port) == ("::1", 8080)
    assert _host_check(target.host or "", port=8080) == Refusal("blocked address: ::1 is loopback")
    https = check_url("HTTPS://LOCALHOST/x", CrawlConfig())
    assert isinstance(https, Target) and (https.scheme, https.host, https.port) == ("https", "localhost", 443)


def test_allow_hosts_is_exact_and_case_insensitive() -> None:
    config = CrawlConfig(allow_hosts=("LocalHost",))
    assert _host_check("localhost", config) is None
    assert _host_check("LOCALHOST", config) is None
    assert _host_check("127.0.0.1", config) == Refusal("blocked address: 127.0.0.1 is loopback")


def test_blocking_can_be_switched_off() -> None:
    assert _host_check("10.0.0.1", CrawlConfig(block_private_addresses=False)) is None


def test_any_private_answer_refuses_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, ["93.184.216.34", "10.0.0.7"])
    assert _host_check("mixed.example") == Refusal("blocked address: 10.0.0.7 is private")


def test_public_answers_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, ["93.184.216.34"])
    assert _host_check("public.example") is None


def test_dns_failure_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, socket.gaierror(-2, "Name or service not known"))
    assert _host_check("nowhere.example") == Refusal(
        "DNS lookup failed: nowhere.example: [Errno -2] Name or service not known"
    )


def test_dns_timeout_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, TimeoutError())
    refusal = _host_check("slow.example", CrawlConfig(connect_timeout_s=0.5))
    assert refusal == Refusal("DNS lookup failed: slow.example: no answer within 0.5 s")


def test_dns_failures_are_results_of_the_fetcher(monkeypatch: pytest.MonkeyPatch, fetch_one: FetchOne) -> None:
    _fake_resolver(monkeypatch, socket.gaierror(-2, "Name or service not known"))
    result = fetch_one("http://nowhere.example/poster.jpg", CrawlConfig())
    assert not result.ok and result.reason == "DNS lookup failed: nowhere.example: [Errno -2] Name or service not known"


# --- schemes -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/a.jpg", "scheme not allowed: ftp"),
        ("gopher://example.com/", "scheme not allowed: gopher"),
        ("javascript:alert(1)", "scheme not allowed: javascript"),
        ("http://", "missing host"),
        ("   ", "empty URL"),
    ],
)
def test_scheme_and_host_refusals(url: str, reason: str) -> None:
    assert check_url(url, CrawlConfig()) == Refusal(reason)


def test_schemes_follow_the_allow_list(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    only_https = CrawlConfig(allowed_schemes=("https",), file_root=str(tmp_path))
    assert check_url("http://example.com/a", only_https) == Refusal("scheme not allowed: http")
    assert isinstance(check_url("https://example.com/a", only_https), Target)
    assert check_url(str(tmp_path / "a.png"), only_https) == Refusal("scheme not allowed: file")


# --- local files ---------------------------------------------------------------------------------------------
@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """``root/posters/a.png`` inside the root, ``outside/secret.png`` beside it."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "posters").mkdir(parents=True)
    outside.mkdir()
    (root / "posters" / "a.png").write_bytes(b"inside")
    (outside / "secret.png").write_bytes(b"secret")
    return root, outside


def test_local_file_under_the_root_is_allowed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    config = CrawlConfig(file_root=str(root))
    expected = (root / "posters" / "a.png").resolve()
    for url in (
        str(root / "posters" / "a.png"),
        (root / "posters" / "a.png").as_uri(),
        "posters/a.png",
        f"file://localhost{root / 'posters' / 'a.png'}",
    ):
        target = check_url(url, config)
        assert isinstance(target, Target) and target.path == expected and target.is_file, url


def test_dot_dot_escape_is_refused(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    url = str(root / "posters" / ".." / ".." / "outside" / "secret.png")
    assert check_url(url, CrawlConfig(file_root=str(root))) == Refusal(f"path outside file_root: {url}")
    assert check_url("../outside/secret.png", CrawlConfig(file_root=str(root))) == Refusal(
        "path outside file_root: ../outside/secret.png"
    )


def test_symlink_escape_is_refused(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (root / "posters" / "link.png").symlink_to(outside / "secret.png")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    config = CrawlConfig(file_root=str(root))
    assert check_url(str(root / "posters" / "link.png"), config) == Refusal(
        f"path outside file_root: {root / 'posters' / 'link.png'}"
    )
    assert check_url("escape/secret.png", config) == Refusal("path outside file_root: escape/secret.png")


def test_symlink_inside_the_root_is_followed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    (root / "alias.png").symlink_to(root / "posters" / "a.png")
    target = check_url(str(root / "alias.png"), CrawlConfig(file_root=str(root)))
    assert isinstance(target, Target) and target.path == (root / "posters" / "a.png").resolve()


def test_local_files_are_refused_without_a_root(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert check_url(str(root / "posters" / "a.png"), CrawlConfig()) == Refusal(
        "local files not allowed: no file_root configured"
    )


def test_local_file_refusals(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    config = CrawlConfig(file_root=str(root))
    assert check_url("posters/none.png", config) == Refusal("file not found: posters/none.png")
    assert check_url("file://evil.example/etc/passwd", config) == Refusal("file URI with a remote host: evil.example")
    assert check_url((root / "posters" / "a.png").as_uri(), config, redirect=True) == Refusal(
        "scheme not allowed: file"
    )


def test_fetcher_reads_confined_files(tree: tuple[Path, Path], fetch_one: FetchOne) -> None:
    root, outside = tree
    (root / "escape.png").symlink_to(outside / "secret.png")
    config = CrawlConfig(file_root=str(root))
    good = fetch_one("posters/a.png", config)
    assert good.ok and good.body == b"inside" and good.content_type == "image/png" and good.http_status is None
    assert good.final_url == (root / "posters" / "a.png").resolve().as_uri() and good.attempts == 1
    escaped = fetch_one(str(root / "escape.png"), config)
    assert not escaped.ok and escaped.reason == f"path outside file_root: {root / 'escape.png'}"
    assert escaped.body is None


def test_fetcher_caps_local_files_and_refuses_non_files(tree: tuple[Path, Path], fetch_one: FetchOne) -> None:
    root, _ = tree
    (root / "big.bin").write_bytes(b"\x00" * 2048)
    config = CrawlConfig(file_root=str(root))
    assert fetch_one("big.bin", config, max_bytes=1024).reason == "too large: > 1024 bytes"
    assert fetch_one("big.bin", config, max_bytes=2048).ok
    assert fetch_one("posters", config).reason == f"not a regular file: {(root / 'posters').resolve()}"
    os.mkfifo(root / "pipe")  # opening a FIFO for reading would block forever without O_NONBLOCK
    assert fetch_one("pipe", config).reason == f"not a regular file: {(root / 'pipe').resolve()}"
