"""The crawler's limits and safety policy, as one frozen option bag shared by every crawl module."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.backoff import RetryBackoff
from tasks.settings import StageSettings

MiB = 1024 * 1024


@dataclass(frozen=True)
class CrawlConfig:
    """Limits and safety policy of the crawler.

    Attributes:
        max_concurrency: requests in flight at once, over all hosts.
        per_host_concurrency: requests in flight at once to one host.
        connect_timeout_s: TCP/TLS connect timeout (also bounds a DNS lookup of the safety check).
        read_timeout_s: longest wait for the next bytes of a response.
        total_timeout_s: deadline of one request attempt, from sending to the last body byte.
        retry: retries after a timeout, a connection error, HTTP 429 or HTTP 5xx, and the waits between them.
        max_redirects: redirects followed before giving up.
        max_bytes: size cap of a poster body (bytes).
        max_text_bytes: size cap of a plot page body (bytes); pass it as ``max_bytes`` when fetching plots.
        max_pixels: images with more pixels are refused before decoding (decompression bombs).
        allowed_image_formats: Pillow format names accepted as posters.
        allowed_schemes: URL schemes that may be fetched (``file`` covers bare local paths too).
        file_root: local files are read only from under this folder; None refuses every local file.
        allow_hosts: host names or IP literals exempt from the private-address refusal (exact,
            case-insensitive), e.g. ``("127.0.0.1",)`` for a server on this machine.
        block_private_addresses: refuse hosts that resolve to loopback, private, link-local, multicast,
            reserved, unspecified or cloud metadata addresses.
        user_agent: the ``User-Agent`` header sent with every request.
        plot_json_field: the field holding the plot in a JSON plot page.
    """

    max_concurrency: int = 64
    per_host_concurrency: int = 16
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    retry: RetryBackoff = field(default_factory=RetryBackoff)
    max_redirects: int = 5
    max_bytes: int = 10 * MiB
    max_text_bytes: int = 1 * MiB
    max_pixels: int = 50_000_000
    allowed_image_formats: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF")
    allowed_schemes: tuple[str, ...] = ("http", "https", "file")
    file_root: str | None = None
    allow_hosts: tuple[str, ...] = ()
    block_private_addresses: bool = True
    user_agent: str = "mmcrs-crawler/0.1"
    plot_json_field: str = "plot"

    def __post_init__(self) -> None:
        if self.max_concurrency < 1 or self.per_host_concurrency < 1:
            raise ValueError("max_concurrency and per_host_concurrency must be at least 1")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        if min(self.max_bytes, self.max_text_bytes, self.max_pixels) < 1:
            raise ValueError("max_bytes, max_text_bytes and max_pixels must be positive")


@dataclass(frozen=True)
class CrawlSettings(StageSettings):
    """What a user sets for one crawl (the limits above keep their defaults).

    Attributes:
        refresh_posters: re-check stored posters with conditional requests (ETag / Last-Modified).
        allow_hosts: hosts exempt from the private-address refusal (e.g. a poster server on 127.0.0.1).
        file_root: the folder local poster / plot paths must lie in (None: local paths are refused).
    """

    refresh_posters: bool = False
    allow_hosts: tuple[str, ...] = ()
    file_root: str | None = None

    def crawl_config(self) -> CrawlConfig:
        """The crawler's option bag for these settings."""
        return CrawlConfig(allow_hosts=self.allow_hosts, file_root=self.file_root)
