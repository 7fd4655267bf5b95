"""open_clip towers (tiny architecture, random weights) and the real packaged MiniLM sentence encoder."""

from __future__ import annotations

import torch
from PIL import Image

from training.encoders.clip import ClipEncoder
from training.encoders.text import TextEncoder, encode_texts


def _images(clip: ClipEncoder, n: int = 3) -> torch.Tensor:
    return torch.stack([clip.preprocess(Image.new("RGB", (60, 90), (40 * i, 200 - 30 * i, 90))) for i in range(n)])


def test_tiny_clip_shapes_and_unit_norm() -> None:
    clip = ClipEncoder.load("random:mmcrs-tiny@0", device="cpu")
    images = clip.encode_images(_images(clip))
    texts, truncated = clip.encode_texts(["a space opera", "a quiet drama " * 60])
    assert images.shape == (3, 64) and texts.shape == (2, 64) and clip.dim == 64
    assert torch.allclose(images.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert torch.allclose(texts.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert truncated == 1  # the long text filled the 77-token context


def test_same_seed_same_vectors_other_seed_other_vectors() -> None:
    a, b, c = (
        ClipEncoder.load(s, device="cpu") for s in ("random:mmcrs-tiny@3", "random:mmcrs-tiny@3", "random:mmcrs-tiny@4")
    )
    pixels = _images(a)
    assert torch.equal(a.encode_images(pixels), b.encode_images(pixels))
    assert not torch.allclose(a.encode_images(pixels), c.encode_images(pixels))
    assert a.model_id == b.model_id != c.model_id == ClipEncoder.model_id_for("random:mmcrs-tiny@4")


def test_random_init_leaves_the_callers_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ClipEncoder.load("random:mmcrs-tiny@9", device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_real_minilm_puts_similar_sentences_closer() -> None:
    encoder = TextEncoder.load(device="cpu", max_length=32)
    vectors, truncated = encoder.encode(
        [
            "A space adventure with starships and a galactic war.",
            "An epic science fiction battle between star fleets in outer space.",
            "A recipe for slow-cooked tomato soup with basil.",
            "word " * 100,
        ]
    )
    assert vectors.shape == (4, 384) and truncated == 1
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3
    assert abs(float((vectors[:3] ** 2).sum(axis=1).mean()) - 1.0) < 1e-4
    same = encode_texts(["A recipe for slow-cooked tomato soup with basil."], encoder=encoder)
    assert float(same[0] @ vectors[2]) > 0.999  # batching and length order do not change a vector
