"""Load an exported model by name and version or alias, and recommend for any dialogue.

Example:
    >>> import training
    >>> rec = training.load("mmcrs-graph-prompt", "production")          # doctest: +SKIP
    >>> rec.recommend([{"role": "seeker", "text": "I loved @123, anything similar?"}], k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file

import features
from features import Lake
from training.artifacts import ArtifactError, fetch, locate, sha256_file
from training.lm import FrozenLM, load_lm
from training.model import GraphPromptRecommender, ModelConfig
from training.registry import resolve
from training.samples import Sample, context_from_messages, mention_lines
from training.train import TrainConfig, make_batch

Message = Mapping[str, str]


__all__ = ["ArtifactError", "Recommender", "load", "load_artifact"]


class Recommender:
    """A loaded model: ``recommend(messages, k=10)`` ranks every item for a dialogue it may never have seen."""

    def __init__(
        self,
        model: GraphPromptRecommender,
        item_ids: Sequence[str],
        titles: Mapping[str, str],
        manifest: dict,
        summaries: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        self.model = model.eval()
        self.item_ids = list(item_ids)
        self.titles = dict(titles)
        self.manifest = manifest
        self.index = {item: i for i, item in enumerate(self.item_ids)}
        self._summaries = dict(summaries or {})

    @property
    def name(self) -> str:
        return str(self.manifest["model_name"])

    @property
    def version(self) -> int:
        return int(self.manifest["version"])

    @torch.no_grad()
    def scores(self, messages: Sequence[Message], *, summary: str | None = None) -> torch.Tensor:
        """(I,) score of every item for the dialogue ``messages`` (``{"role", "text"}`` with ``@<item_id>``)."""
        text, items = context_from_messages(messages, titles=self.titles)
        summaries = dict(self._summaries)
        if summary and summary not in summaries:
            summaries[summary] = self.model.lm.encode([summary])[0]
        said = mention_lines(messages, items, titles=self.titles)
        sample = Sample("", len(messages), "", text, items, (None,) * len(items), summary, False, said, False)
        batch = make_batch([sample], model=self.model, index=self.index, summaries=summaries)
        scores, _ = self.model(batch)
        return scores[0]

    def recommend(
        self, messages: Sequence[Message], *, k: int = 10, exclude_mentioned: bool = True, summary: str | None = None
    ) -> list[tuple[str, float]]:
        """The top ``k`` items as ``(item_id, score)``, best first; items already mentioned are left out."""
        scores = self.scores(messages, summary=summary).clone()
        if exclude_mentioned:
            for item in context_from_messages(messages)[1]:
                if item in self.index:
                    scores[self.index[item]] = float("-inf")
        top = torch.topk(scores, min(k, len(self.item_ids)))
        return [
            (self.item_ids[i], float(s)) for s, i in zip(top.values, top.indices, strict=True) if s != float("-inf")
        ]


def _verify(folder: Path, manifest: dict) -> None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not all(isinstance(d, str) for d in files.values()):
        raise ArtifactError(f"{folder / 'manifest.json'} lists no files with their sha256")
    for name, digest in files.items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path} is missing")
        if sha256_file(path) != digest:
            raise ArtifactError(f"{path} does not match its sha256 in manifest.json")


def _read_json(folder: Path, name: str) -> dict:
    try:
        loaded = json.loads((folder / name).read_text())
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{folder / name} is missing or unreadable: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ArtifactError(f"{folder / name} is not a JSON object")
    return loaded


def load_artifact(folder: str | Path, *, lm: FrozenLM | None = None, verify: bool = True) -> Recommender:
    """Load a model from a local artifact folder (checksums verified against ``manifest.json``).

    Raises:
        ArtifactError: a file is missing, unreadable or altered, or the weights do not fit the config.
    """
    folder = Path(folder)
    manifest = _read_json(folder, "manifest.json")
    absent = [key for key in ("model_name", "version") if key not in manifest]
    if absent:
        raise ArtifactError(f"{folder / 'manifest.json'} lacks {', '.join(absent)}")
    if verify:
        _verify(folder, manifest)
    config = _read_json(folder, "config.json")
    if not isinstance(config.get("train"), dict) or not isinstance(config.get("model"), dict):
        raise ArtifactError(f"{folder / 'config.json'} lacks its train and model sections")
    train_conf = TrainConfig.from_dict(config["train"])  # nested, or the flat form of older exports
    lm = lm or load_lm(train_conf.lm, layers_kept=train_conf.lm_layers)
    model = GraphPromptRecommender(ModelConfig.from_dict(config["model"]), lm)
    state = load_file(str(folder / "model.safetensors"))
    for key, tensor in state.items():
        if key.startswith("adj_"):  # sized by the graph: replace the empty placeholders
            setattr(model, key, tensor)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("lm.") for k in missing):
        raise ArtifactError(f"weights do not fit the config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    items = _read_json(folder, "items.json")
    return Recommender(model, items["item_ids"], items["titles"], manifest)


def load(
    model_name: str,
    version_or_alias: str | int = "production",
    *,
    lake: Lake | str | None = None,
    lm: FrozenLM | None = None,
    cache_dir: str | Path | None = None,
) -> Recommender:
    """Load a registered model by version number or alias (``candidate``, ``production``) from its lake.

    The registry row's ``artifact_uri`` is resolved against the lake (``_artifacts/<model>/<version>``) or
    used as it is when absolute; files on an object store are downloaded to ``cache_dir`` (default
    ``~/.cache/mmcrs/artifacts``) and verified against the manifest's sha256.

    Raises:
        LookupError: no such model, version or alias in the registry.
        ArtifactError: the artifact is missing, unreadable, incomplete or altered (the message names the
            model, the version and the URI).
    """
    resolved = features.resolve_lake(lake)
    row = resolve(model_name, version_or_alias, lake=resolved)
    where = f"model {model_name} v{row['version']}"
    if not row["artifact_uri"]:
        raise ArtifactError(f"{where}: the registry records no artifact URI")
    uri = locate(row["artifact_uri"], lake=resolved)
    try:
        folder = fetch(uri, lake=resolved, cache_dir=cache_dir)
    except (OSError, ValueError, KeyError) as exc:
        raise ArtifactError(f"{where}: artifact {uri} is missing or unreadable: {exc}") from exc
    try:
        return load_artifact(folder, lm=lm)
    except ArtifactError as exc:
        raise ArtifactError(f"{where}: artifact {uri}: {exc}") from exc
