"""Versioned, reproducible model artifacts: ``<lake>/_artifacts/<model_name>/<version>/`` (or under an explicit
artifacts root; see ``training.artifacts``).

Files: ``model.safetensors`` (everything but the frozen LM, which reloads from its spec), ``config.json``
(model + train config), ``items.json`` (item ids and titles), ``manifest.json`` (inputs with their Delta
versions, split seed, config hash, git sha, package versions, LM spec and fingerprint, metrics, eval protocol,
sha256 of every other file), ``MODEL_CARD.md`` and PNG plots (training curve, Recall@k vs baselines).
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from safetensors.torch import save_file

import features
from features import Lake
from training.artifacts import artifact_uri, locate, publish, sha256_file
from training.data import TrainingData
from training.metrics import PROTOCOLS
from training.model import GraphPromptRecommender
from training.train import TrainResult

__all__ = ["export_run", "sha256_file"]
PACKAGES = ("torch", "transformers", "safetensors", "polars", "deltalake", "pyarrow", "mmcrs")
EVAL_PROTOCOL = {
    "name": "full-ranking-serving-time",
    "ranking": "full ranking over every item of the run; rank = 1 + items scored strictly higher",
    "standard": "every sample (one per item mentioned in a recommender turn)",
    "no_repeats": "samples whose target was mentioned earlier in the dialogue left out; context items removed "
    "from the ranking",
    "labels": "serving-time: valid / test context items scored with every liked label unknown, exactly as "
    "recommend() sees a dialogue (metrics valid, test); oracle labels: scored with the dataset's post-dialogue "
    "questionnaire labels, for comparison with papers that use them (metrics valid_oracle_labels, test_oracle_labels)",
    "metrics": ["recall@1", "recall@10", "recall@50", "mrr@10", "mrr@50", "ndcg@10", "ndcg@50"],
    "selection": "early stopping on the mean of train config select_metrics (default recall@10, recall@50) on "
    "valid under the protocol(s) select_on names (default both) and eval_labels (default serving); promotion on "
    "serving-time valid standard recall@10",
}


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def _write_json(path: Path, payload: object) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def _plots(folder: Path, result: TrainResult, baselines: dict[str, dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in result.history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["loss"] for h in result.history], label="train loss")
    ax2 = ax.twinx()
    ax2.plot(
        epochs, [h["valid_standard_recall@10"] for h in result.history], color="tab:orange", label="valid Recall@10"
    )
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2.set_ylabel("valid Recall@10")
    fig.legend(loc="upper center")
    fig.tight_layout()
    fig.savefig(folder / "training_curve.png", dpi=80)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    contenders = _contenders(result, baselines)
    for ax, protocol in zip(axes, PROTOCOLS, strict=True):
        for name, metrics in contenders.items():
            ax.plot([1, 10, 50], [metrics[protocol][f"recall@{k}"] for k in (1, 10, 50)], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_title(f"test, {protocol}")
        ax.set_xlabel("k")
    axes[0].set_ylabel("Recall@k")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(folder / "recall_vs_baselines.png", dpi=80)
    plt.close(fig)
    return ["training_curve.png", "recall_vs_baselines.png"]


def _signals(model: GraphPromptRecommender) -> str:
    conf, out = model.config, ["LM-pooled query"]
    out += ["context-items graph pathway"] if conf.graph_pathway else []
    out += ["per-item bias"] if conf.item_bias else []
    out += (
        ["raw co-mention co-occurrence (the co-mention item-kNN's score, log1p, learned weight)"]
        if model.cooccurrence_graphs
        else []
    )
    out += ["learned already-mentioned (repeat) score"] if conf.repeat_score else []
    return " + ".join(out)


def _contenders(result: TrainResult, baselines: dict[str, dict]) -> dict[str, dict]:
    """Test metrics per contender: the model serving-time, the model with oracle labels (when measured), baselines."""
    oracle = result.metrics.get("test_oracle_labels")
    return {"model": result.metrics["test"], **({"model (oracle labels)": oracle} if oracle else {}), **baselines}


LABELS_READ = {"model": "serving-time", "model (oracle labels)": "oracle labels"}  # baselines read none


def metrics_table(contenders: dict[str, dict]) -> list[str]:
    """The model card's metrics table: one row per contender and protocol, with the context labels it read and
    the test sample count ``n`` behind every number."""
    rows = ["| contender | labels | protocol | R@1 | R@10 | R@50 | MRR@10 | NDCG@10 | n |", "|---" * 9 + "|"]
    for contender, metrics in contenders.items():
        for protocol in PROTOCOLS:
            m = metrics[protocol]
            rows.append(
                f"| {contender} | {LABELS_READ.get(contender, 'none')} | {protocol} | {m['recall@1']:.4f} | "
                f"{m['recall@10']:.4f} | {m['recall@50']:.4f} | {m['mrr@10']:.4f} | {m['ndcg@10']:.4f} | "
                f"{int(m['n'])} |"
            )
    return rows


def _sentiment_line(result: TrainResult) -> str:
    head = result.metrics.get("test_sentiment", {}).get("labels")
    if not head:
        return "No sentiment head: at serving time every context label is unknown."
    return (
        f"Sentiment head (predicts each context item's liked / disliked / unknown label from the turn that mentions "
        f"it; serving-time rows use its predictions): test accuracy {head['accuracy']:.4f} over {int(head['n'])} "
        f"context items (majority label {head['majority']:.4f})."
    )


def _card(name: str, version: int, result: TrainResult, data: TrainingData, baselines: dict[str, dict]) -> str:
    rows = metrics_table(_contenders(result, baselines))
    skipped = "\n".join(f"- {k}: {v}" for k, v in sorted(data.skipped.items())) or "- none"
    views = ", ".join(result.model.config.experts)
    return f"""# {name} v{version}

## Intended use
Offline conversational recommendation research: given a dialogue (seeker/recommender turns with `@<item_id>`
mentions), rank the catalog's items for the next recommendation. Load with
`training.load("{name}", "{version}")` or `mmcrs recommend --model {name}@production`.
Not for serving decisions about people; not evaluated beyond the data below.

## Data
Input tables and Delta versions: {json.dumps(data.input_versions, sort_keys=True)}.
Split by dialogue with seed {data.split.seed}: {len(data.split.train)} / {len(data.split.valid)} /
{len(data.split.test)} dialogues; {len(data.samples["train"])} / {len(data.samples["valid"])} /
{len(data.samples["test"])} samples; {len(data.item_ids)} items ranked.
Views used: {views}. Score signals: {_signals(result.model)}.
Checkpoint selection: valid mean of {", ".join(result.config.select_metrics)} under
`select_on={result.config.select_on}`. Skipped inputs:
{skipped}

## Metrics (test split; best epoch {result.best_epoch})
Evaluation protocol: `{EVAL_PROTOCOL["name"]}` ({EVAL_PROTOCOL["ranking"]}; {len(data.item_ids)} items; "n" is
the number of test samples behind each row). "model" is the serving-time evaluation: no context item's liked
label is read, exactly as `recommend()` sees a dialogue's text. "model (oracle labels)" scores the same
samples with the dataset's post-dialogue questionnaire labels, as papers that use them do; a deployed model
never has them. Checkpoint selection saw `eval_labels={result.config.eval_labels}`. {_sentiment_line(result)}

{chr(10).join(rows)}

## Limitations
Frozen LM `{result.config.lm}` ({result.config.lm.fingerprint()[:16]}); item ids unseen in training
have untrained id embeddings; "standard" numbers include repeated mentions and overstate quality — read
"no_repeats". Small data gives noisy numbers.
"""


def export_run(
    result: TrainResult,
    data: TrainingData,
    *,
    model_name: str,
    version: int,
    lake: Lake | str | None = None,
    root: str | os.PathLike[str] | None = None,
    baselines: dict[str, dict] | None = None,
) -> str:
    """Write one version's artifacts with the lake (or under ``root``) and return what the registry records:
    ``_artifacts/<model>/<version>`` relative to the lake, or the absolute location under ``root``.

    Raises:
        FileExistsError: that version's location holds files already.
    """
    resolved = features.resolve_lake(lake)
    uri = artifact_uri(model_name, version, artifacts_root=root)
    with tempfile.TemporaryDirectory(prefix="mmcrs-export-") as staging:
        _write_folder(Path(staging), result, data, model_name, version, resolved.root, baselines or {})
        publish(Path(staging), locate(uri, lake=resolved), lake=resolved)
    return uri


def _write_folder(
    folder: Path,
    result: TrainResult,
    data: TrainingData,
    model_name: str,
    version: int,
    lake_root: str,
    baselines: dict[str, dict],
) -> None:
    """Every file of one version in the local ``folder``, ``manifest.json`` (with their sha256) last."""
    from features.commits import config_hash

    state = {k: v.detach().contiguous() for k, v in result.model.trainable_state().items()}
    save_file(state, str(folder / "model.safetensors"))
    train_conf = result.config.model_dump(mode="json")
    _write_json(folder / "config.json", {"model": result.model.config.to_dict(), "train": train_conf})
    _write_json(folder / "items.json", {"item_ids": list(data.item_ids), "titles": data.titles})
    files = ["model.safetensors", "config.json", "items.json", *_plots(folder, result, baselines)]
    (folder / "MODEL_CARD.md").write_text(_card(model_name, version, result, data, baselines))
    files.append("MODEL_CARD.md")
    manifest = {
        "model_name": model_name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "inputs": {"lake": lake_root, "tables": data.input_versions},
        "split": {
            "seed": data.split.seed,
            "fractions": list(result.config.fractions),
            "dialogues": {k: len(data.split.of(k)) for k in ("train", "valid", "test")},
            "samples": {k: len(v) for k, v in data.samples.items()},
        },
        "config_hash": config_hash(train_conf),
        "git_sha": features.code_version(),
        "packages": _versions(),
        "lm": {"spec": str(result.config.lm), "fingerprint": result.config.lm.fingerprint()},
        "metrics": {
            "model": result.metrics,
            "baselines": baselines,
            "best_epoch": result.best_epoch,
            "history": result.history,
            "timings": result.timings,
        },
        "eval_protocol": EVAL_PROTOCOL
        | {
            "select_on": result.config.select_on,
            "select_metrics": list(result.config.select_metrics),
            "eval_labels": result.config.eval_labels,
        },
        "skipped": data.skipped,
        "files": {name: sha256_file(folder / name) for name in files},
    }
    _write_json(folder / "manifest.json", manifest)
