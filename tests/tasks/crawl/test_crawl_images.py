"""Image validation: formats, decompression bombs, truncated and non-image bodies (in memory and served)."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageFile

from tasks.crawl.config import CrawlConfig
from tasks.crawl.fetch import FetchResult
from tasks.crawl.images import ImageInfo, validate_image

FetchOne = Callable[..., FetchResult]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_allowed_formats_are_accepted(posters: dict[str, bytes], fmt: str) -> None:
    data = posters[fmt]
    info = validate_image(data, config=CrawlConfig())
    assert info == ImageInfo(48, 64, fmt, hashlib.sha256(data).hexdigest(), len(data))


def test_format_outside_the_allow_list_is_refused(posters: dict[str, bytes]) -> None:
    config = CrawlConfig(allowed_image_formats=("JPEG", "PNG", "WEBP"))
    assert validate_image(posters["GIF"], config=config) == "format GIF not allowed"


@pytest.mark.parametrize("data", [b"<html><body>Access denied</body></html>", b"\x00" * 100, b"GIF8"])
def test_non_images_are_refused(data: bytes) -> None:
    assert validate_image(data, config=CrawlConfig()) == "not an image: cannot identify image file"


def test_empty_body_is_refused() -> None:
    assert validate_image(b"", config=CrawlConfig()) == "not an image: empty body"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF"])
def test_truncated_images_are_refused(posters: dict[str, bytes], fmt: str) -> None:
    data = posters[fmt]
    reason = validate_image(data[: len(data) // 2], config=CrawlConfig())
    assert isinstance(reason, str) and reason.startswith("truncated image: "), reason


def test_truncated_webp_is_refused(posters: dict[str, bytes]) -> None:
    data = posters["WEBP"]
    reason = validate_image(data[: len(data) // 2], config=CrawlConfig())
    assert isinstance(reason, str) and reason.startswith(("truncated image: ", "corrupt image: ")), reason


def test_huge_bomb_is_refused_with_its_dimensions(png_bomb: bytes) -> None:
    # 400 M pixels: Pillow's own guard fires inside Image.open; the reason still names the header's size
    assert validate_image(png_bomb, config=CrawlConfig()) == "decompression bomb: 20000 x 20000 pixels > 50000000"


def test_pixel_limit_is_checked_before_decoding(posters: dict[str, bytes]) -> None:
    config = CrawlConfig(max_pixels=1000)
    assert validate_image(posters["PNG"], config=config) == "decompression bomb: 48 x 64 pixels > 1000"


def test_pillow_bomb_warning_as_error_becomes_the_reason(make_bomb: Callable[[int, int], bytes]) -> None:
    data = make_bomb(10000, 10000)  # 100 M pixels: above Pillow's warning threshold, below its error
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert validate_image(data, config=CrawlConfig()) == "decompression bomb: 10000 x 10000 pixels > 50000000"
    with pytest.warns(Image.DecompressionBombWarning):
        assert validate_image(data, config=CrawlConfig()) == "decompression bomb: 10000 x 10000 pixels > 50000000"


def test_global_pillow_settings_are_left_alone(png_bomb: bytes) -> None:
    before = Image.MAX_IMAGE_PIXELS
    validate_image(png_bomb, config=CrawlConfig(max_pixels=10))
    assert before == Image.MAX_IMAGE_PIXELS and ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_load_truncated_images_switched_on_is_a_loud_error(
    posters: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        validate_image(posters["JPEG"], config=CrawlConfig())


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/html-as-jpeg", "not an image: cannot identify image file"),
        ("/bomb.png", "decompression bomb: 20000 x 20000 pixels > 50000000"),
    ],
)
def test_served_bad_images_are_fetched_then_refused(
    server: Any, fetch_one: FetchOne, config: CrawlConfig, target: str, reason: str
) -> None:
    result = fetch_one(server.url(target))
    assert result.ok and result.body is not None
    assert validate_image(result.body, config=config) == reason


def test_served_truncated_jpeg_is_refused(server: Any, fetch_one: FetchOne, config: CrawlConfig) -> None:
    result = fetch_one(server.url("/truncated.jpg"))
    assert result.ok and result.body is not None and result.content_type == "image/jpeg"
    reason = validate_image(result.body, config=config)
    assert isinstance(reason, str) and reason.startswith("truncated image: image file is truncated")
