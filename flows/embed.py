"""The embedding flow: CLIP image and text vectors and sentence vectors for every item that lacks them."""

from __future__ import annotations

from prefect import flow

from tasks.embed.config import EmbedConfig
from tasks.embed.task import embed_task


@flow(name="embed", log_prints=True)
def embed_flow(
    lake: str | None = None,
    modalities: list[str] | None = None,
    clip_model: str | None = None,
    text_model: str | None = None,
    batch_size: int | None = None,
    device: str | None = None,
) -> dict[str, object]:
    """Embed items (image, clip_text, text); parameters left None keep ``EmbedConfig``'s defaults."""
    overrides: dict[str, object] = {"modalities": tuple(modalities) if modalities else None,
                                    "clip_model": clip_model, "text_model": text_model,
                                    "batch_size": batch_size, "device": device}
    config = EmbedConfig(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    return embed_task(lake, config)
