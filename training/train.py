"""The training loop: AdamW with warmup, early stopping on validation recall, seeded and deterministic on CPU.

The validation number that selects the checkpoint is configurable: the mean of ``TrainConfig.select_metrics``
(default Recall@10 and Recall@50) under ``TrainConfig.select_on`` (the standard protocol, the no-repeats
protocol, or by default both), so that a checkpoint that only got better at repeating already-mentioned
items, or at the top 10 at the cost of the top 50, does not win.

Evaluation is serving-time by default: valid and test samples are scored with every context label unknown,
exactly as ``training.loading.Recommender.recommend`` sees a dialogue (``TrainConfig.eval_labels`` names what
early stopping sees). ``fit`` also reports the dataset's own labels, for comparison with papers that use them,
under ``metrics["valid_oracle_labels"]`` / ``metrics["test_oracle_labels"]``; ``metrics["valid"]`` and
``metrics["test"]`` are the serving-time numbers.

Example:
    >>> data = load_training_data(DataOptions(seed=0), lake="./lake")   # doctest: +SKIP
    >>> result = fit(data, TrainConfig(epochs=5))                        # doctest: +SKIP
    >>> result.metrics["test"]["no_repeats"]["recall@10"]                # doctest: +SKIP
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from training.config import EvalLabels, SelectOn, TrainConfig
from training.data import TrainingData, dialogue_items, target_counts
from training.lm import FrozenLM, load_lm
from training.metrics import evaluate_protocols
from training.model import Batch, GraphPromptRecommender
from training.samples import Sample, without_labels

EpochCallback = Callable[[dict[str, float]], None]
MENTION_TOKENS = 64  # tokens of the turn mentioning a context item that the sentiment head reads


@dataclass
class TrainResult:
    """What ``fit`` returns: the best model, per-epoch history, final metrics and timings."""

    model: GraphPromptRecommender
    config: TrainConfig
    history: list[dict[str, float]]
    metrics: dict[str, dict[str, dict[str, float]]]  # split -> protocol -> metric
    best_epoch: int
    timings: dict[str, float] = field(default_factory=dict)

    def checkpoint(self) -> dict[str, object]:
        """The checkpoint dict: weights (LM excluded), model and train configs, metrics, item ids."""
        return {
            "state_dict": self.model.trainable_state(),
            "model_config": self.model.config.to_dict(),
            "train_config": self.config.model_dump(mode="json"),
            "metrics": self.metrics,
            "best_epoch": self.best_epoch,
        }


def seed_everything(seed: int) -> None:
    """Seed Python and torch (CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def build_model(data: TrainingData, config: TrainConfig, lm: FrozenLM) -> GraphPromptRecommender:
    """A fresh model over ``data``'s items, graphs and feature modalities."""
    modalities = tuple(data.features)
    mconf = dataclasses.replace(
        config.model,
        n_items=len(data.item_ids),
        graphs=tuple(data.graphs),
        modalities=modalities,
        feature_dims=tuple(int(data.features[m].shape[1]) for m in modalities),
    )
    model = GraphPromptRecommender(mconf, lm)
    for name, graph in data.graphs.items():
        model.set_graph(name, graph.edge_index, graph.edge_weight)
    for name, vectors in data.features.items():
        model.set_features(name, vectors)
    if config.init_from is not None and config.init_from in data.features:
        model.init_item_embeddings(data.features[config.init_from])
    model.set_item_bias(torch.log1p(target_counts(data)))
    return model


def _cooc_offset(
    samples: Sequence[Sample], items: torch.Tensor, mask: torch.Tensor, n_items: int, own: dict[str, frozenset[int]]
) -> torch.Tensor:
    """(B, I): per candidate i of the sample's own dialogue, the number of context slots holding another item
    (each such pair was counted once for this dialogue in ``co_mention``)."""
    offset = torch.zeros(len(samples), n_items)
    for row, s in enumerate(samples):
        members = torch.tensor(sorted(own.get(s.dialogue_id, ())), dtype=torch.long)
        if not len(members):
            continue
        slots = items[row][mask[row]]
        offset[row, members] = (slots.unsqueeze(0) != members.unsqueeze(1)).sum(1).to(offset.dtype)
    return offset


def make_batch(
    samples: Sequence[Sample],
    *,
    model: GraphPromptRecommender,
    index: dict[str, int],
    summaries: dict[str, torch.Tensor],
    own_dialogues: dict[str, frozenset[int]] | None = None,
) -> Batch:
    """Tokenise contexts and gather context items / summary vectors for ``samples``. With ``own_dialogues``
    (training samples), the batch carries the co-mention counts of each sample's own dialogue to leave out."""
    conf, lm = model.config, model.lm
    texts = [s.context_text or "(start)" for s in samples]
    states = None
    if model.split:
        cached = lm.lower_states(texts, max_tokens=conf.max_context_tokens, split=model.split)
        tok = {
            "input_ids": nn.utils.rnn.pad_sequence([ids for ids, _ in cached], batch_first=True),
            "attention_mask": nn.utils.rnn.pad_sequence(
                [torch.ones(len(ids), dtype=torch.long) for ids, _ in cached], batch_first=True
            ),
        }
        states = nn.utils.rnn.pad_sequence([h for _, h in cached], batch_first=True)
    else:
        tok = lm.tokenize(texts, max_tokens=conf.max_context_tokens)
    c = max(1, conf.max_context_items)
    items = torch.zeros(len(samples), c, dtype=torch.long)
    mask = torch.zeros(len(samples), c, dtype=torch.bool)
    labels = torch.zeros(len(samples), c, dtype=torch.long)
    mentions = [[""] * c for _ in samples]
    for row, s in enumerate(samples):
        said = s.context_mentions or ("",) * len(s.context_items)
        known = [
            (index[i], lab, t) for i, lab, t in zip(s.context_items, s.context_liked, said, strict=True) if i in index
        ]
        for col, (pos, lab, text) in enumerate(known[-conf.max_context_items :] if conf.max_context_items else []):
            items[row, col], mask[row, col], mentions[row][col] = pos, True, text
            labels[row, col] = 0 if lab is None else (1 if lab else 2)
    zero = torch.zeros(lm.hidden_size)
    summary = torch.stack([summaries.get(s.summary, zero) if s.summary else zero for s in samples])
    has = torch.tensor([bool(s.summary) and s.summary in summaries for s in samples])
    targets = torch.tensor([index.get(s.target, -1) for s in samples], dtype=torch.long)
    offset = None
    if own_dialogues is not None and model.cooccurrence_graphs:
        offset = _cooc_offset(samples, items, mask, conf.n_items, own_dialogues)
    batch = Batch(tok["input_ids"], tok["attention_mask"], items, mask, labels, summary, has, targets, states, offset)
    if conf.sentiment_head:
        flat = [text for row in mentions for text in row]
        batch.mention_states = lm.encode_memo(flat, max_tokens=MENTION_TOKENS).view(len(samples), c, -1)
        batch.labels_observed = torch.tensor([s.labels_observed for s in samples], dtype=torch.bool)
    return batch


def _autocast(device: torch.device) -> torch.autocast:
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=device.type == "cuda")


@dataclass(frozen=True)
class Scoring:
    """What scoring samples takes besides the model.

    Attributes:
        index: item id -> the model's item position.
        summaries: preference summary text -> its frozen-LM vector.
        batch_size: samples scored at once.
        own_dialogues: training samples only: each dialogue's own items, left out (see ``make_batch``).
    """

    index: dict[str, int]
    summaries: dict[str, torch.Tensor]
    batch_size: int = 128
    own_dialogues: dict[str, frozenset[int]] | None = None


@torch.no_grad()
def score_samples(model: GraphPromptRecommender, samples: Sequence[Sample], scoring: Scoring) -> torch.Tensor:
    """(N, I) scores of every item for every sample (model in eval mode, on its device)."""
    model.eval()
    device = next(model.parameters()).device
    experts = model.expert_embeddings()
    out = []
    for start in range(0, len(samples), scoring.batch_size):
        batch = make_batch(
            samples[start : start + scoring.batch_size],
            model=model,
            index=scoring.index,
            summaries=scoring.summaries,
            own_dialogues=scoring.own_dialogues,
        )
        with _autocast(device):
            scores, _ = model(batch.to(device), experts)
        out.append(scores.float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.config.n_items)


def evaluate_model(
    model: GraphPromptRecommender,
    samples: Sequence[Sample],
    *,
    index: dict[str, int],
    summaries: dict[str, torch.Tensor],
    batch_size: int = 128,
    labels: EvalLabels = "serving",
) -> dict[str, dict[str, float]]:
    """Both protocols' metrics on ``samples`` (targets outside the item universe are dropped).

    ``labels="serving"`` scores every context label as unknown (what ``recommend()`` sees); ``"oracle"`` scores
    with the samples' own labels."""
    samples = [s for s in samples if s.target in index]
    if labels == "serving":
        samples = without_labels(samples)
    scores = score_samples(model, samples, Scoring(index, summaries, batch_size))
    targets = torch.tensor([index[s.target] for s in samples], dtype=torch.long)
    contexts = [[index[i] for i in s.context_items if i in index] for s in samples]
    return evaluate_protocols(scores, targets, contexts)


def _final_labels(samples: Sequence[Sample], index: dict[str, int]) -> dict[tuple[str, str], tuple[str, int]]:
    """(dialogue, item) -> (the latest turn mentioning it, its label 0/1/2) over the samples' context items."""
    out: dict[tuple[str, str], tuple[str, int]] = {}
    for s in sorted(samples, key=lambda s: (s.dialogue_id, s.turn_idx)):
        said = s.context_mentions or ("",) * len(s.context_items)
        for item, liked, text in zip(s.context_items, s.context_liked, said, strict=True):
            if item in index:
                out[(s.dialogue_id, item)] = (text, 0 if liked is None else (1 if liked else 2))
    return out


@torch.no_grad()
def sentiment_accuracy(model: GraphPromptRecommender, samples: Sequence[Sample], *, index: dict[str, int]) -> dict:
    """The sentiment head's accuracy on the samples' context items, one per (dialogue, item) with its final
    label: ``{"accuracy", "majority" (the most common label's share), "n"}``; empty without a head."""
    pairs = _final_labels(samples, index)
    if not model.config.sentiment_head or not pairs:
        return {}
    texts, labels = zip(*pairs.values(), strict=True)
    device = next(model.parameters()).device
    states = model.lm.encode_memo(list(texts), max_tokens=MENTION_TOKENS).to(device)
    predicted = model.sentiment(states).argmax(-1).cpu()
    truth = torch.tensor(labels)
    majority = float(torch.bincount(truth, minlength=3).max()) / len(truth)
    return {"accuracy": float((predicted == truth).float().mean()), "majority": majority, "n": float(len(truth))}


def fit_sentiment_head(
    model: GraphPromptRecommender, samples: Sequence[Sample], *, index: dict[str, int], steps: int = 200
) -> None:
    """Fit the sentiment head (a logistic regression over frozen vectors) to the training dialogues' context
    labels before the first step, from the label prior: so that the initialised model, checkpoint candidate
    epoch 0, already predicts labels (the auxiliary loss keeps training it). No-op without a head."""
    pairs = _final_labels(samples, index)
    if not model.config.sentiment_head or not pairs:
        return
    texts, labels = zip(*pairs.values(), strict=True)
    device = next(model.parameters()).device
    states = model.lm.encode_memo(list(texts), max_tokens=MENTION_TOKENS).to(device)
    truth = torch.tensor(labels, device=device)
    prior = torch.bincount(truth, minlength=3).float() + 1.0
    with torch.no_grad():
        model.sentiment.weight.zero_()
        model.sentiment.bias.copy_(torch.log(prior / prior.sum()))
    optimizer = torch.optim.Adam(model.sentiment.parameters(), lr=0.01)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model.sentiment(states), truth).backward()
        optimizer.step()


def summary_vectors(lm: FrozenLM, data: TrainingData) -> dict[str, torch.Tensor]:
    """Frozen-LM embeddings of every distinct preference summary in the run."""
    texts = sorted({s.summary for split in data.samples.values() for s in split if s.summary})
    return dict(zip(texts, lm.encode(texts), strict=True)) if texts else {}


def param_groups(model: GraphPromptRecommender, config: TrainConfig) -> list[dict]:
    """Optimizer groups: the id embeddings and item bias at ``lr x item_lr_mult``, the rest at ``lr``."""
    item_names = {"item_emb.weight", "bias"}
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if n in item_names], "lr": config.lr * config.item_lr_mult},
        {"params": [p for n, p in trainable if n not in item_names], "lr": config.lr},
    ]
    return [g for g in groups if g["params"]]


def _schedule(optimizer: torch.optim.Optimizer, total: int, warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, math.ceil(total * warmup_frac))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup),  # linear warmup, then constant
    )


def _subset(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """At most ``limit`` samples, chosen with ``seed`` and kept in their original order."""
    if limit is None or len(samples) <= limit:
        return samples
    keep = sorted(random.Random(seed).sample(range(len(samples)), limit))
    return [samples[i] for i in keep]


def selection_score(
    metrics: dict[str, dict[str, float]],
    select_on: SelectOn,
    select_metrics: Sequence[str] = ("recall@10", "recall@50"),
) -> float:
    """The validation number that early stopping maximises: the mean of ``select_metrics`` under
    ``select_on``'s protocol, or under both protocols (``both``)."""
    protocols = ("standard", "no_repeats") if select_on == "both" else (select_on,)
    return sum(metrics[p][m] for p in protocols for m in select_metrics) / (len(protocols) * len(select_metrics))


SCALES = tuple(round(0.05 * k, 2) for k in range(1, 41))  # 0.05 .. 2.0


@torch.no_grad()
def calibrate_scale(model: GraphPromptRecommender, samples: Sequence[Sample], scoring: Scoring) -> float:
    """Set the model's ``logit_scale`` to the value in ``SCALES`` with the lowest cross-entropy on ``samples``
    (a temperature: no ranking changes). No-op for models without one or without samples."""
    if not hasattr(model, "logit_scale") or not samples:
        return 1.0
    model.logit_scale.fill_(1.0)
    scores = score_samples(model, samples, scoring)
    targets = torch.tensor([scoring.index[s.target] for s in samples], dtype=torch.long)
    losses = [float(nn.functional.cross_entropy(scores * scale, targets)) for scale in SCALES]
    best = SCALES[min(range(len(SCALES)), key=losses.__getitem__)]
    model.logit_scale.fill_(best)
    return best


@dataclass
class _Run:
    """One ``fit``'s working state: the model on its device, its samples and its optimiser."""

    config: TrainConfig
    model: GraphPromptRecommender
    device: torch.device
    index: dict[str, int]
    summaries: dict[str, torch.Tensor]
    train: list[Sample]
    valid: list[Sample]
    own: dict[str, frozenset[int]] | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator

    def evaluate(self, samples: Sequence[Sample], labels: EvalLabels | None = None) -> dict[str, dict[str, float]]:
        """Both protocols' metrics of the model as it is now, with ``labels`` (default: the config's)."""
        return evaluate_model(
            self.model,
            samples,
            index=self.index,
            summaries=self.summaries,
            batch_size=self.config.eval_batch_size,
            labels=labels or self.config.eval_labels,
        )


def _start(data: TrainingData, config: TrainConfig, lm: FrozenLM | None) -> _Run:
    """Seed, build the model over ``data``, pick the samples, set up the optimiser, calibrate the scale."""
    seed_everything(config.seed)
    device = resolve_device(config.device)
    lm = lm or load_lm(config.lm, layers_kept=config.lm_layers)
    model = build_model(data, config, lm).to(device)
    index, summaries = data.index, summary_vectors(lm, data)
    train = _subset([s for s in data.samples["train"] if s.target in index], config.max_train_samples, config.seed)
    valid = _subset(data.samples["valid"], config.max_eval_samples, config.seed)
    optimizer = torch.optim.AdamW(param_groups(model, config), lr=config.lr, weight_decay=config.weight_decay)
    own = dialogue_items(data.samples["train"], index) if config.leave_dialogue_out else None
    steps = config.epochs * max(1, math.ceil(len(train) / config.batch_size))
    scheduler = _schedule(optimizer, steps, config.warmup_frac)
    generator = torch.Generator().manual_seed(config.seed)
    run = _Run(config, model, device, index, summaries, train, valid, own, optimizer, scheduler, generator)
    fit_sentiment_head(model, data.samples["train"], index=index)
    calibrate_scale(model, _subset(train, 512, config.seed), Scoring(index, summaries, config.eval_batch_size, own))
    return run


def _train_epoch(run: _Run, epoch: int) -> dict[str, float]:
    model, train = run.model.train(), run.train
    order = torch.randperm(len(train), generator=run.generator).tolist()
    bs, totals, n = run.config.batch_size, {"loss": 0.0}, 0
    # disable=None: no bar (no carriage-return noise in logs) unless stderr is a terminal
    bar = tqdm(
        range(0, len(order), bs), desc=f"epoch {epoch}", disable=None if run.config.progress else True, leave=False
    )
    for start in bar:
        batch = make_batch(
            [train[i] for i in order[start : start + bs]],
            model=model,
            index=run.index,
            summaries=run.summaries,
            own_dialogues=run.own,
        ).to(run.device)
        with _autocast(run.device):
            loss, parts = model.loss(batch)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        totals["loss"] += loss.item()
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value
        n += 1
        bar.set_postfix(loss=f"{totals['loss'] / n:.3f}")
    return {k: v / max(1, n) for k, v in totals.items()}


def _epochs(run: _Run, on_epoch: EpochCallback | None) -> tuple[list[dict[str, float]], int, dict[str, float]]:
    """Train epoch by epoch until ``patience`` epochs bring no better validation score, then restore the best
    state (the initialised model is candidate epoch 0). Returns the history, the best epoch and timings."""
    config, history = run.config, []
    best = selection_score(run.evaluate(run.valid), config.select_on, config.select_metrics)
    best_epoch, waited, train_s, eval_s = 0, 0, 0.0, 0.0
    best_state = copy.deepcopy(run.model.trainable_state())
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        losses = _train_epoch(run, epoch)
        t1 = time.perf_counter()
        valid = run.evaluate(run.valid)
        train_s, eval_s = train_s + t1 - t0, eval_s + time.perf_counter() - t1
        row = {
            "epoch": float(epoch),
            **losses,
            **{f"valid_{p}_{k}": v for p, m in valid.items() for k, v in m.items() if k != "n"},
            "valid_selection": selection_score(valid, config.select_on, config.select_metrics),
        }
        history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if row["valid_selection"] > best:
            best, best_epoch, waited = row["valid_selection"], epoch, 0
            best_state = copy.deepcopy(run.model.trainable_state())
        else:
            waited += 1
            if waited >= config.patience:
                break
    run.model.load_state_dict(best_state, strict=False)
    epochs = max(1, len(history))
    timings = {"train_s_per_epoch": train_s / epochs, "eval_s_per_epoch": eval_s / epochs}
    return history, best_epoch, timings


def fit(
    data: TrainingData, config: TrainConfig, *, on_epoch: EpochCallback | None = None, lm: FrozenLM | None = None
) -> TrainResult:
    """Train on ``data.samples["train"]``, early-stop on validation recall, evaluate valid and test.

    ``metrics["valid"]`` / ``metrics["test"]`` are serving-time (no context labels; the sentiment head, when on,
    predicts them from the text), ``metrics["valid_oracle_labels"]`` / ``metrics["test_oracle_labels"]`` the same
    splits scored with the dataset's labels, and ``metrics["<split>_sentiment"]["labels"]`` the sentiment head's
    accuracy there (``sentiment_accuracy``).

    The best of the initialised model (``best_epoch`` 0) and every epoch on ``selection_score`` (the mean of
    ``config.select_metrics`` under the protocol(s) ``config.select_on`` names) is kept.

    Args:
        data: the run's inputs (see ``training.data.load_training_data``).
        config: the run's config.
        on_epoch: called after every epoch with that epoch's metrics (e.g. to publish a Prefect artifact).
        lm: an already loaded frozen LM matching ``config`` (saves reloading it across runs).
    """
    run = _start(data, config, lm)
    history, best_epoch, timings = _epochs(run, on_epoch)
    started = time.perf_counter()
    metrics = {name: run.evaluate(data.samples[name], "serving") for name in ("valid", "test")}
    metrics |= {f"{name}_oracle_labels": run.evaluate(data.samples[name], "oracle") for name in ("valid", "test")}
    if config.model.sentiment_head:
        for name in ("valid", "test"):
            metrics[f"{name}_sentiment"] = {
                "labels": sentiment_accuracy(run.model, data.samples[name], index=run.index)
            }
    timings |= {"final_eval_s": time.perf_counter() - started, "epochs_run": float(len(history))}
    return TrainResult(run.model.cpu(), config, history, metrics, best_epoch, timings)
