"""URL policy: which URLs the crawler may fetch, decided before any byte is sent.

Two checks, both returning a ``Refusal`` with a precise reason instead of raising:

- ``check_url`` (no I/O beyond resolving local paths): the scheme must be allowed; a local file (``file://``
  URI or bare path) must resolve, symlinks followed, to a file under ``file_root``; an HTTP(S) URL must
  name a host and carry no credentials (``user:password@``: never sent, never stored). HTTP(S) URLs are
  parsed with httpx, the same parser that later sends the request, so the host checked is the host
  connected to.
- ``check_host`` (DNS): unless the host is in ``allow_hosts``, every address it resolves to must be
  globally routable: loopback, private, link-local, multicast, reserved, unspecified and cloud metadata
  addresses are refused (server-side request forgery). IP literals are checked without DNS.

Known limitation (DNS rebinding): ``check_host`` resolves the name, then httpx resolves it again to
connect. A hostile DNS server answering with a public address first and a private one a moment later
slips through that window. Closing it needs connecting to the checked address itself (a custom
transport); the crawler accepts the window because redirects are re-checked hop by hop and the
crawler only ever reads responses (it never sends bodies or credentials).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from tasks.crawl.config import CrawlConfig

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba): credentials live there.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
_HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class Refusal:
    """A URL or host the policy refuses, and why."""

    reason: str


@dataclass(frozen=True)
class Target:
    """A URL the policy accepts.

    Attributes:
        url: the URL as given (HTTP) or the ``file://`` URI of the resolved path (local files).
        scheme: ``http``, ``https`` or ``file``.
        host: the host to connect to, lower case, IPv6 without brackets (HTTP only).
        port: the port to connect to, defaults filled in (HTTP only).
        path: the resolved local file, inside ``file_root`` (local files only).
    """

    url: str
    scheme: str
    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @property
    def is_file(self) -> bool:
        """True for a local file."""
        return self.path is not None


def _check_file(raw: str, config: CrawlConfig) -> Target | Refusal:
    """A local path (or the path of a ``file://`` URI) confined to ``file_root``."""
    if config.file_root is None:
        return Refusal("local files not allowed: no file_root configured")
    try:
        root = Path(config.file_root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        return Refusal(f"file_root unusable: {exc}")
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = root / candidate  # relative catalog paths are relative to file_root
    try:
        resolved = candidate.resolve(strict=True)  # follows every symlink, then we check containment
    except FileNotFoundError:
        return Refusal(f"file not found: {raw}")
    except (OSError, RuntimeError) as exc:  # permission denied, symlink loop
        return Refusal(f"cannot resolve path: {raw}: {exc}")
    if not resolved.is_relative_to(root):
        return Refusal(f"path outside file_root: {raw}")
    return Target(url=resolved.as_uri(), scheme="file", path=resolved)


def _file_path(url: str) -> str | Refusal:
    """The local path a ``file://`` URI names (only ``file:///...`` or ``file://localhost/...``)."""
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        return Refusal(f"file URI with a remote host: {parts.netloc.rpartition('@')[2]}")
    if parts.query or parts.fragment:
        return Refusal("file URI with a query or fragment")
    return unquote(parts.path)


def _check_http(url: str, config: CrawlConfig) -> Target | Refusal:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        return Refusal(f"invalid URL: {exc}")
    if parsed.scheme not in _HTTP_SCHEMES or parsed.scheme not in config.allowed_schemes:
        return Refusal(f"scheme not allowed: {parsed.scheme or '(none)'}")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        return Refusal("missing host")
    if parsed.userinfo:  # the crawler never sends credentials, and a password must not reach the lake's rows
        return Refusal("credentials in URL (user:password@) not allowed")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return Target(url=str(parsed), scheme=parsed.scheme, host=host, port=port)


def _as_address(host: str) -> IPAddress | None:
    """The IP address an IP-literal host names, else None (a name to resolve)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


async def _resolve(host: str, port: int, timeout_s: float) -> list[IPAddress]:
    """Every address ``host`` resolves to (the tests replace this to avoid real DNS)."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = (_as_address(str(info[4][0])) for info in infos)
    return [address for address in found if address is not None]


def address_class(address: IPAddress) -> str | None:
    """Why an address is refused (``"loopback"``, ``"private"``, ...), or None for a public address.

    IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``) are judged by the IPv4 address they carry.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),  # before "private": Python counts 240.0.0.0/4 as both
        ("private", address.is_private),
        ("not globally routable", not address.is_global),  # e.g. shared address space 100.64.0.0/10
    )
    return next((name for name, hit in checks if hit), None)


def check_url(url: str, config: CrawlConfig, *, redirect: bool = False) -> Target | Refusal:
    """Check a URL's scheme, host presence and (local files) confinement to ``file_root``.

    Args:
        url: an ``http(s)://`` URL, a ``file://`` URI or a bare local path (relative paths are taken
            relative to ``file_root``).
        config: the policy (``allowed_schemes``, ``file_root``).
        redirect: the URL is a redirect target: local files are refused whatever the policy.

    Returns:
        A ``Target`` to fetch, or a ``Refusal`` with the reason. Addresses are checked by ``check_host``.

    Example:
        >>> check_url("ftp://example.com/a.jpg", CrawlConfig())
        Refusal(reason='scheme not allowed: ftp')
    """
    url = url.strip()
    if not url:
        return Refusal("empty URL")
    scheme = urlsplit(url).scheme.lower()
    if scheme in _HTTP_SCHEMES:
        return _check_http(url, config)
    if scheme not in ("", "file"):
        return Refusal(f"scheme not allowed: {scheme}")
    if redirect or "file" not in config.allowed_schemes:  # a server may never point us at our own disk
        return Refusal("scheme not allowed: file")
    path = _file_path(url) if scheme == "file" else url
    return path if isinstance(path, Refusal) else _check_file(path, config)


async def check_host(host: str, port: int, config: CrawlConfig) -> Refusal | None:
    """Refuse a host that is, or resolves to, a non-public address.

    Args:
        host: a host name or IP literal (IPv6 without brackets).
        port: the port that will be connected to (passed to the resolver).
        config: the policy (``block_private_addresses``, ``allow_hosts``, ``connect_timeout_s``).

    Returns:
        None when the host may be contacted, else a ``Refusal`` such as
        ``"blocked address: 127.0.0.1 is loopback"`` or ``"DNS lookup failed: ..."``.
    """
    host = host.lower()
    if not config.block_private_addresses or host in {h.lower() for h in config.allow_hosts}:
        return None
    literal = _as_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await _resolve(host, port, config.connect_timeout_s)
        except TimeoutError:
            return Refusal(f"DNS lookup failed: {host}: no answer within {config.connect_timeout_s} s")
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            return Refusal(f"DNS lookup failed: {host}: {exc}")
        if not addresses:
            return Refusal(f"DNS lookup failed: {host}: no addresses")
    for address in addresses:
        kind = address_class(address)
        if kind is not None:
            return Refusal(f"blocked address: {address} is {kind}")
    return None
