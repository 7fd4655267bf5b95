"""The configs of a training run, light to import (no torch): ``ModelConfig`` (the architecture) and
``TrainConfig`` (every knob of a run, ``model`` nested). Settings are validated against them before a run
starts, without loading any model code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator, model_validator

from training.spec import MINILM, ModelSpec, random_lm


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; ``graphs`` / ``modalities`` name the views actually present (absent ones were skipped).

    ``n_items``, ``graphs``, ``modalities``, ``feature_dims`` and ``extra`` (``DATA_FIELDS``) describe the data
    and are filled in when a model is built over it; the other fields are the knobs a train config sets.
    """

    n_items: int = 0
    graphs: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    feature_dims: tuple[int, ...] = ()  # aligned with modalities
    id_dim: int = 64
    layers: int = 2
    n_prompts: int = 2
    max_context_items: int = 8
    max_context_tokens: int = 64
    gating: bool = True
    use_summary: bool = False  # preference summaries measured no gain on ReDial (bench/RESULTS.md)
    align_weight: float = 0.1
    temperature: float = 0.2
    graph_pathway: bool = True
    item_bias: bool = True
    prompt_depth: int | None = 1  # top LM layers that read the prompts (None: all, prompts at the input)
    cooccurrence: bool = True  # raw co-occurrence (kNN-like) signal over the co_mention graph's raw counts
    cooccurrence_init: float = 16.0  # initial weight of log1p(summed co_mention counts) (chosen on validation)
    repeat_score: bool = True  # learned score of the context items themselves, per liked/disliked/unknown label
    repeat_init: float = 32.0  # its initial value (chosen on validation, with cooccurrence_init)
    explore_weight: float = 0.0  # weight of the explore loss (context items masked out of the softmax)
    sentiment_head: bool = False  # predict unobserved context labels from the turn mentioning the item (off: no
    # validation gain in bench/train_quality, see bench/RESULTS.md)
    sentiment_weight: float = 1.0  # weight of its auxiliary loss (cross-entropy against the training labels)
    lm_pathway: bool = True  # the LM-pooled query's scores (off: graph pathway, bias and co-occurrence only)
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable form (tuples become lists)."""
        return asdict(self)

    def knobs(self) -> dict:
        """The architecture knobs only (``to_dict`` without ``DATA_FIELDS``): what a train config records."""
        return {k: v for k, v in self.to_dict().items() if k not in DATA_FIELDS}

    @classmethod
    def knob_names(cls) -> tuple[str, ...]:
        """Names of the architecture knobs (every field but ``DATA_FIELDS``)."""
        return tuple(f.name for f in fields(cls) if f.name not in DATA_FIELDS)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of ``to_dict``; a saved config that predates a signal (``OFF_WHEN_ABSENT``) loads as the
        model it described: with that signal off."""
        tuples = {k: tuple(v) for k, v in data.items() if k in ("graphs", "modalities", "feature_dims")}
        return cls(**(OFF_WHEN_ABSENT | data | tuples))

    @property
    def experts(self) -> tuple[str, ...]:
        return ("id", *(f"graph:{g}" for g in self.graphs), *(f"feat:{m}" for m in self.modalities))


DATA_FIELDS = ("n_items", "graphs", "modalities", "feature_dims", "extra")  # set from the data, not by knobs
# Signals a saved config may not mention (it was written before they existed): that model ran without them.
OFF_WHEN_ABSENT = {
    "graph_pathway": False,
    "item_bias": False,
    "prompt_depth": None,
    "cooccurrence": False,
    "repeat_score": False,
    "sentiment_head": False,
}


SelectOn = Literal["standard", "no_repeats", "both"]
# Context labels the evaluation shows the model: "serving" none (every label unknown, as ``recommend()`` sees a
# dialogue), "oracle" the dataset's own (ReDial's liked labels are post-dialogue questionnaire answers).
EvalLabels = Literal["serving", "oracle"]
LEGACY_LM_KEYS = ("lm_kind", "lm_path", "lm_hidden")  # flat configs named the frozen LM with these
RENAMED_MODEL_KEYS = {"use_summaries": "use_summary"}  # flat key -> ModelConfig field


class TrainConfig(BaseModel):
    """Every knob of a run; serialised into the checkpoint, the manifest and the registry.

    ``model`` holds the architecture knobs (``ModelConfig``; its data fields are filled in from the data by
    ``build_model``), ``lm`` the frozen LM's weights. Build one from a mapping with ``from_dict``, which also
    takes the flat form of older configs and exports (see ``from_dict``).
    """

    model_config = ConfigDict(frozen=True)

    seed: int = 0
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup_frac: float = 0.1
    patience: int = 3
    eval_batch_size: int = 128
    lm: ModelSpec = MINILM  # the frozen LM (a ModelSpec or its string, e.g. "random:bert-h32-l1-a2@0")
    lm_layers: int | None = None  # keep only the first N LM layers (None: all)
    max_train_samples: int | None = None  # a seeded subset of the training samples per run (None: all)
    max_eval_samples: int | None = None  # per-epoch validation on a fixed subset (final metrics use all)
    model: ModelConfig = ModelConfig()
    leave_dialogue_out: bool = True  # training samples: co_mention counts without their own dialogue
    select_on: SelectOn = "both"  # protocol(s) of the early-stopping metric: standard, no_repeats, both (mean)
    select_metrics: tuple[str, ...] = ("recall@10", "recall@50")  # early stopping on their mean (validation)
    eval_labels: EvalLabels = "serving"  # context labels early stopping's validation shows the model (EvalLabels)
    init_from: str | None = "text"  # modality whose vectors initialise the id embeddings (None / absent: random)
    item_lr_mult: float = 3.0  # learning rate of the id embeddings and item bias, x lr
    graphs: tuple[str, ...] | None = None  # None: every graph present
    modalities: tuple[str, ...] | None = None  # None: every modality present
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    device: str = "auto"  # auto: CUDA (with bf16 autocast) when present, else CPU
    progress: bool = True

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> TrainConfig:
        """A config from its nested form (``model_dump``), or from the flat form of older configs and exports.

        The flat form names the model knobs at the top level (``id_dim``, ``layers``, ..., ``use_summaries``
        for ``model.use_summary``) and the frozen LM with ``lm_kind`` (``package`` | ``local`` | ``random``),
        ``lm_path`` (``local``) and ``lm_hidden`` (``random``, seeded with ``seed``). Both forms may be mixed.

        Raises:
            ValueError: unknown keys (named), or a knob given twice with different values.
        """
        return cls.model_validate(dict(mapping))

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        knobs = {*ModelConfig.knob_names(), *RENAMED_MODEL_KEYS}
        unknown = set(data) - set(cls.model_fields) - knobs - set(LEGACY_LM_KEYS)
        if unknown:
            raise ValueError(f"unknown train config keys: {sorted(unknown)}")
        flat = {RENAMED_MODEL_KEYS.get(k, k): data.pop(k) for k in list(data) if k in knobs}
        if flat or isinstance(data.get("model"), Mapping):
            data["model"] = _merge_model(data.get("model"), flat)
        legacy = {k: data.pop(k) for k in LEGACY_LM_KEYS if k in data}
        if legacy:
            if "lm" in data:
                raise ValueError(f"give the frozen LM as lm or as {sorted(legacy)}, not both")
            data["lm"] = _legacy_lm(legacy, seed=int(data.get("seed", 0)))
        return data

    @field_validator("lm", mode="before")
    @classmethod
    def _parse_lm(cls, value: Any) -> Any:
        return ModelSpec.parse(value) if isinstance(value, str) else value

    @field_serializer("lm")
    def _lm_text(self, lm: ModelSpec) -> str:
        return str(lm)

    @field_serializer("model")
    def _model_knobs(self, model: ModelConfig) -> dict:
        return model.knobs()


def _merge_model(nested: ModelConfig | Mapping[str, Any] | None, flat: dict[str, Any]) -> ModelConfig:
    """One ``ModelConfig`` from a nested section (or None) and flat top-level knobs."""
    if isinstance(nested, ModelConfig):
        nested = nested.knobs()
    section = dict(nested or {})
    unknown = set(section) - set(ModelConfig.knob_names())
    if unknown:
        raise ValueError(f"unknown train config model keys: {sorted(unknown)}")
    clash = sorted(k for k in set(section) & set(flat) if section[k] != flat[k])
    if clash:
        raise ValueError(f"model knobs given twice, flat and under model, with different values: {clash}")
    merged = section | flat
    tuples = {k: tuple(v) for k, v in merged.items() if isinstance(v, list)}
    return ModelConfig(**(merged | tuples))


def _legacy_lm(legacy: Mapping[str, Any], *, seed: int) -> ModelSpec:
    """The spec the flat ``lm_kind`` / ``lm_path`` / ``lm_hidden`` keys named (the random LM took the run's seed)."""
    kind = legacy.get("lm_kind") or "package"
    if kind == "random":
        return random_lm(hidden=int(legacy.get("lm_hidden") or 32), seed=seed)
    if kind == "local" and legacy.get("lm_path"):
        return ModelSpec("local", str(legacy["lm_path"]))
    if kind in ("package", "local"):
        return MINILM
    raise ValueError(f"unknown lm_kind {kind!r}: package | local | random")
