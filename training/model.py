"""The graph-prompt recommender (MSCRS + AMFRec): graph views of item ids, gated fusion, soft prompts, frozen LM.

Item side: learnable item id embeddings propagated over each item graph with LightGCN-style weightless
propagation (He et al., 2020: L layers, symmetric normalisation, layer mean), one view per graph, plus one
view per item feature modality (fixed vectors from ``item_embeddings``) and the raw id view. Each view is
projected into the LM hidden size (AMFRec's per-modality projections); a gate conditioned on the dialogue
context mixes them per example (AMFRec's gated mixture of experts). An InfoNCE loss aligns the views of the
same item (MSCRS). Dialogue side: soft prompt vectors — built from the fused embeddings of the context
items and the preference-summary embedding — are prepended to the dialogue's token embeddings and read by
the frozen LM; its pooled output scores every item by dot product with the fused item embeddings.

Further signals make the item graph carry the ranking where the dialogue text says little:
- a context-items pathway (``graph_pathway``): per view, the mean of the context items' (propagated,
  projected) embeddings is compared (cosine x a learned scale) with every candidate's, the views mixed by
  the same gate; plus, per graph, the context items propagated over it as one-hot vectors (the same
  L-layer LightGCN propagation with identity embeddings: each candidate's graph proximity to the context,
  row-max normalised) with a learned weight per graph; a learned, context-conditioned sigmoid mixes this
  pathway with the LM-pooled query's scores (samples without context items use the LM pathway alone);
- a learned per-item bias (``item_bias``), initialised by the trainer from the training split's target counts;
- a raw co-occurrence signal (``cooccurrence``): the SUM over the context items of the ``co_mention`` graph's
  raw edge weights (dialogue counts, un-normalised, so popular items keep their weight), through ``log1p``,
  with a learned weight initialised to ``cooccurrence_init``. This is the co-mention item-kNN baseline's score
  inside the model (monotone in it), added outside the pathway mix so the initialised model ranks unseen items
  like the kNN.
  For TRAINING samples the trainer passes ``Batch.cooc_offset``, the counts the sample's own dialogue put into
  ``co_mention`` (leave-one-dialogue-out): without it every training target is co-mentioned with its context
  by construction, and the model learns to trust the signal far more than it deserves on unseen dialogues;
- a learned "already mentioned" score (``repeat_score``, RepeatNet's repeat mode): a learned score per
  liked / disliked / unknown label added to the context items themselves, which the standard protocol
  rewards (targets are often items mentioned earlier) and the no-repeats protocol never sees.
- a sentiment head (``sentiment_head``): where a batch's labels are not observed (serving time: a dialogue's
  text carries no questionnaire answers), a linear classifier over the frozen LM's pooled vector of the latest
  turn that mentions each context item predicts its unknown / liked / disliked distribution, which then feeds
  the repeat score and the label embedding in place of "unknown". It trains on the training dialogues' labels
  (an auxiliary cross-entropy, ``sentiment_weight``); where labels are observed they are used as they are.
All scores are multiplied by a learned temperature (``logit_scale``), which the trainer calibrates on training
samples before the first step (it changes no ranking; without it the kNN-like signal makes the initial
softmax so peaked that the first steps spend themselves shrinking every weight, ranking included).
Training can add an "explore" loss (``explore_weight``, see ``loss``): for samples whose target is not among
the context items, the cross-entropy with the context items masked out of the softmax.
Soft prompts enter the LM at its input, or at its top ``prompt_depth`` layers (see ``training.lm``).
Only the id embeddings, projections, gates, prompt encoder, pathway scale and item bias train.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig
from training.lm import FrozenLM
from training.modalities import cooccurrence_graphs


@dataclass
class Batch:
    """Model inputs for B samples. C = context item slots, T = tokens."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    ctx_items: torch.Tensor  # (B, C) item positions (0 where padded)
    ctx_mask: torch.Tensor  # (B, C) bool
    ctx_labels: torch.Tensor  # (B, C) 0 unknown, 1 liked, 2 disliked
    summary: torch.Tensor  # (B, H_lm) summary embedding (zeros when absent)
    has_summary: torch.Tensor  # (B,) bool
    targets: torch.Tensor  # (B,) target positions (-1 at inference)
    word_states: torch.Tensor | None = None  # (B, T, H) cached lower-layer token states (prompt_depth mode)
    cooc_offset: torch.Tensor | None = None  # (B, I) co_mention counts from the sample's own dialogue (training)
    mention_states: torch.Tensor | None = None  # (B, C, H) pooled LM vector of the turn mentioning each context item
    labels_observed: torch.Tensor | None = None  # (B,) bool: ctx_labels are real (None: all observed)

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(**{k: None if v is None else v.to(device) for k, v in vars(self).items()})


def normalized_adjacency(edge_index: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetrised, self-loop-free, D^-1/2 A D^-1/2 adjacency as (indices (2, E), values (E,))."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both = both[:, both[0] != both[1]]
    both = torch.unique(both, dim=1)  # sorted, de-duplicated: deterministic order
    deg = torch.zeros(n).index_add_(0, both[0], torch.ones(both.shape[1]))
    inv = deg.clamp(min=1).pow(-0.5)
    return both, inv[both[0]] * inv[both[1]]


def raw_adjacency_transposed(
    edge_index: torch.Tensor, edge_weight: torch.Tensor | None, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw weighted adjacency, TRANSPOSED (row = dst, column = src), as coalesced (indices (2, E), values
    (E,)): duplicates summed, self-loops and negative weights (e.g. PMI) dropped, direction kept, so that
    ``A^T @ onehot(context)`` is each candidate's summed weight from the context items."""
    weight = torch.ones(edge_index.shape[1]) if edge_weight is None else edge_weight.to(torch.float32)
    keep = (edge_index[0] != edge_index[1]) & (weight > 0)
    adj = torch.sparse_coo_tensor(edge_index[:, keep].flip(0), weight[keep], (n, n)).coalesce()
    return adj.indices(), adj.values()


class GraphPromptRecommender(nn.Module):
    """Scores all items for a dialogue context. See the module docstring."""

    def __init__(self, config: ModelConfig, lm: FrozenLM) -> None:
        super().__init__()
        self.config, self.lm = config, lm
        hidden, n = lm.hidden_size, config.n_items
        self.item_emb = nn.Embedding(n, config.id_dim)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        counted = cooccurrence_graphs()  # graphs whose raw weights are co-occurrence counts
        self.cooccurrence_graphs = tuple(g for g in config.graphs if config.cooccurrence and g in counted)
        for g in config.graphs:  # filled by set_graph / load_state_dict
            self.register_buffer(f"adj_index_{g}", torch.zeros(2, 0, dtype=torch.long))
            self.register_buffer(f"adj_value_{g}", torch.zeros(0))
            if g in self.cooccurrence_graphs:
                self.register_buffer(f"adj_raw_index_{g}", torch.zeros(2, 0, dtype=torch.long))
                self.register_buffer(f"adj_raw_value_{g}", torch.zeros(0))
        for m, dim in zip(config.modalities, config.feature_dims, strict=True):
            self.register_buffer(f"feat_{m}", torch.zeros(n, dim))
        in_dims = [config.id_dim] * (1 + len(config.graphs)) + list(config.feature_dims)
        self.proj = nn.ModuleList(nn.Linear(d, hidden) for d in in_dims)
        self.gate = nn.Linear(hidden, len(in_dims))
        self.label_emb = nn.Embedding(3, hidden)
        self.prompt_base = nn.Parameter(torch.randn(config.n_prompts, hidden) * 0.02)
        self.prompt_mlp = nn.Linear(hidden, config.n_prompts * hidden)
        self.summary_proj = nn.Linear(hidden, hidden)
        self.query = nn.Linear(hidden, hidden)
        self.split = lm.split_point(config.prompt_depth)  # lower LM layers run on the text alone (cached)
        if config.graph_pathway:
            self.path_gate = nn.Linear(hidden, 1)
            nn.init.zeros_(self.path_gate.weight)
            nn.init.constant_(self.path_gate.bias, 2.0)  # starts leaning on the graph pathway
            self.path_scale = nn.Parameter(torch.tensor(10.0))
            self.diffusion_weight = nn.Parameter(torch.full((len(config.graphs),), 5.0))
        if config.item_bias:
            self.bias = nn.Parameter(torch.zeros(n))
        if self.cooccurrence_graphs:
            init = [config.cooccurrence_init] * len(self.cooccurrence_graphs)
            self.cooccurrence_weight = nn.Parameter(torch.tensor(init, dtype=torch.float32))
        if config.repeat_score:
            self.repeat_weight = nn.Parameter(torch.full((3,), config.repeat_init))  # unknown, liked, disliked
        if self.cooccurrence_graphs or config.repeat_score:
            self.logit_scale = nn.Parameter(torch.tensor(1.0))
        if config.sentiment_head:
            self.sentiment = nn.Linear(hidden, 3)  # unknown, liked, disliked

    def set_graph(self, graph: str, edge_index: torch.Tensor, edge_weight: torch.Tensor | None = None) -> None:
        """Install one graph's (2, E) edges as its normalised adjacency, and its (E,) raw weights (count
        graphs: dialogue counts; ``None``: 1 per edge) as the raw co-occurrence adjacency."""
        index, value = normalized_adjacency(edge_index, self.config.n_items)
        setattr(self, f"adj_index_{graph}", index)
        setattr(self, f"adj_value_{graph}", value)
        if graph in self.cooccurrence_graphs:
            index, value = raw_adjacency_transposed(edge_index, edge_weight, self.config.n_items)
            setattr(self, f"adj_raw_index_{graph}", index)
            setattr(self, f"adj_raw_value_{graph}", value)

    def set_features(self, modality: str, vectors: torch.Tensor) -> None:
        """Install one modality's (I, d) fixed item vectors (zeros for items without one)."""
        getattr(self, f"feat_{modality}").copy_(vectors)

    def init_item_embeddings(self, vectors: torch.Tensor) -> None:
        """Initialise the id embeddings from (I, d) item vectors: their top ``id_dim`` principal components,
        scaled to the default init's std (items without a vector, all zeros, keep their random init)."""
        present = vectors.abs().sum(1) > 0
        if int(present.sum()) <= 1:
            return
        centred = vectors[present] - vectors[present].mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        k = min(self.config.id_dim, v.shape[0])
        reduced = centred @ v[:k].T
        reduced = reduced / reduced.std().clamp(min=1e-8) * 0.1
        with torch.no_grad():
            self.item_emb.weight[present, :k] = reduced
            self.item_emb.weight[present, k:] = 0.0

    def set_item_bias(self, bias: torch.Tensor) -> None:
        """Set the (I,) per-item bias (no-op without ``item_bias``)."""
        if self.config.item_bias:
            with torch.no_grad():
                self.bias.copy_(bias)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen LM (which reloads from its spec)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("lm.")}

    # -- item side -------------------------------------------------------------------------------------------
    def _propagate(self, graph: str) -> torch.Tensor:
        index, value = getattr(self, f"adj_index_{graph}"), getattr(self, f"adj_value_{graph}")
        n = self.config.n_items
        adj = torch.sparse_coo_tensor(index, value, (n, n), is_coalesced=True, check_invariants=False)
        layer, layers = self.item_emb.weight, [self.item_emb.weight]
        for _ in range(self.config.layers):
            layer = torch.sparse.mm(adj, layer)  # (I, d)
            layers.append(layer)
        return torch.stack(layers).mean(0)

    def diffusion(self, ctx_items: torch.Tensor, ctx_mask: torch.Tensor) -> torch.Tensor:
        """(G, B, I): per graph, the mean of the context items' one-hot vectors propagated 1..L layers (layer
        mean), each row divided by its max (0 without context)."""
        n, out = self.config.n_items, []
        weights = ctx_mask.to(torch.float32) / ctx_mask.sum(1, keepdim=True).clamp(min=1)  # (B, C)
        start = self._context_onehots(ctx_items, weights)  # (I, B)
        for graph in self.config.graphs:
            index, value = getattr(self, f"adj_index_{graph}"), getattr(self, f"adj_value_{graph}")
            adj = torch.sparse_coo_tensor(index, value, (n, n), is_coalesced=True, check_invariants=False)
            layer, total = start, torch.zeros_like(start)
            for _ in range(max(1, self.config.layers)):
                layer = torch.sparse.mm(adj, layer)
                total = total + layer
            total = total.T  # (B, I)
            out.append(total / total.amax(1, keepdim=True).clamp(min=1e-12))
        return torch.stack(out) if out else torch.zeros(0, ctx_items.shape[0], n, device=ctx_items.device)

    def _context_onehots(self, ctx_items: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """(I, B): column b holds ``weights[b, c]`` at item ``ctx_items[b, c]`` (repeated items accumulate)."""
        b, c = ctx_items.shape
        start = torch.zeros(self.config.n_items, b, device=ctx_items.device)
        cols = torch.arange(b, device=ctx_items.device).repeat(c)
        return start.index_put_((ctx_items.T.reshape(-1), cols), weights.T.reshape(-1).to(start.dtype), accumulate=True)

    def cooccurrence(
        self, ctx_items: torch.Tensor, ctx_mask: torch.Tensor, offset: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(G, B, I): per graph, log1p of the SUM over the context items of their raw edge weights to each
        candidate (the co-mention item-kNN's score for ``co_mention``, less ``offset`` there); 0 without context."""
        n, out = self.config.n_items, []
        start = self._context_onehots(ctx_items, ctx_mask.to(torch.float32))  # (I, B) counts
        for graph in self.cooccurrence_graphs:
            index, value = getattr(self, f"adj_raw_index_{graph}"), getattr(self, f"adj_raw_value_{graph}")
            adj_t = torch.sparse_coo_tensor(index, value, (n, n), is_coalesced=True, check_invariants=False)
            summed = torch.sparse.mm(adj_t, start).T  # (B, I)
            if offset is not None:
                summed = (summed - offset.to(summed.dtype)).clamp(min=0.0)
            out.append(torch.log1p(summed))
        return torch.stack(out) if out else torch.zeros(0, ctx_items.shape[0], n, device=ctx_items.device)

    def predicts_labels(self, batch: Batch) -> bool:
        """Whether the sentiment head replaces some of ``batch``'s labels (head on, mention texts present, and
        labels not observed for at least one sample)."""
        return (
            self.config.sentiment_head
            and batch.mention_states is not None
            and batch.labels_observed is not None
            and not bool(batch.labels_observed.all())
        )

    def label_probs(self, batch: Batch) -> torch.Tensor:
        """(B, C, 3) label distribution of each context slot: one-hot where labels are observed, the sentiment
        head's prediction elsewhere (one-hot "unknown" without a head)."""
        onehot = F.one_hot(batch.ctx_labels, 3).to(torch.float32)
        if not self.predicts_labels(batch):
            return onehot
        assert batch.mention_states is not None and batch.labels_observed is not None
        predicted = torch.softmax(self.sentiment(batch.mention_states.to(torch.float32)).float(), dim=-1)
        return torch.where(batch.labels_observed.view(-1, 1, 1), onehot, predicted)

    def repeat_scores(self, batch: Batch, probs: torch.Tensor | None = None) -> torch.Tensor:
        """(B, I): the learned "already mentioned" score of each context item (its label distribution ``probs``
        times the per-label scores), 0 for other items."""
        probs = self.label_probs(batch) if probs is None else probs
        out = torch.zeros(batch.ctx_items.shape[0], self.config.n_items, device=batch.ctx_items.device)
        for label in range(3):
            hit = (probs[..., label] * batch.ctx_mask.to(probs.dtype)).to(out.dtype)  # (B, C)
            present = torch.zeros_like(out).scatter_add_(1, batch.ctx_items, hit).clamp(max=1.0)
            out = out + self.repeat_weight[label] * present
        return out

    def expert_embeddings(self) -> torch.Tensor:
        """(M, I, H) item embeddings of every view, projected into the LM hidden size."""
        raw = [self.item_emb.weight] + [self._propagate(g) for g in self.config.graphs]
        raw += [getattr(self, f"feat_{m}") for m in self.config.modalities]
        return torch.stack([proj(x) for proj, x in zip(self.proj, raw, strict=True)])

    # -- dialogue side ---------------------------------------------------------------------------------------
    def _gate(self, batch: Batch, ctx_mean: torch.Tensor, words: torch.Tensor, summary: torch.Tensor) -> torch.Tensor:
        n_experts = len(self.proj)
        if not self.config.gating:
            return torch.full((ctx_mean.shape[0], n_experts), 1.0 / n_experts, device=ctx_mean.device)
        mask = batch.attention_mask.unsqueeze(-1).to(words.dtype)
        text = (words * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
        return torch.softmax(self.gate(ctx_mean + text + summary), dim=-1)  # (B, M)

    def _summary(self, batch: Batch) -> torch.Tensor:
        use = batch.has_summary & self.config.use_summary
        return self.summary_proj(batch.summary) * use.unsqueeze(-1).to(batch.summary.dtype)  # (B, H)

    def _lm_scores(
        self, batch: Batch, experts: torch.Tensor, ctx: torch.Tensor, gate: torch.Tensor, probs: torch.Tensor
    ) -> torch.Tensor:
        """(B, I): the frozen LM reads soft prompts (fused context items with their labels, summary) + the
        dialogue; its pooled output, projected, scores every item per view, views mixed by the gate."""
        words = self.lm.embed_tokens(batch.input_ids)  # (B, T, H)
        summary = self._summary(batch)
        cmask = batch.ctx_mask.unsqueeze(-1).to(ctx.dtype)  # (B, C, 1)
        labels = (probs @ self.label_emb.weight.to(probs.dtype)).to(ctx.dtype)  # (B, C, H)
        fused_ctx = torch.einsum("bm,mbch->bch", gate, ctx) + labels  # (B, C, H)
        fused_mean = (fused_ctx * cmask).sum(1) / cmask.sum(1).clamp(min=1.0)
        base = self.prompt_base + self.prompt_mlp(fused_mean).view(-1, self.config.n_prompts, fused_mean.shape[-1])
        prompts = torch.cat([base, fused_ctx, summary.unsqueeze(1)], dim=1)  # (B, P, H)
        ones = torch.ones(base.shape[:2], dtype=batch.attention_mask.dtype, device=words.device)
        has_sum = (batch.has_summary & self.config.use_summary).to(batch.attention_mask.dtype).unsqueeze(1)
        prompt_mask = torch.cat([ones, batch.ctx_mask.to(ones.dtype), has_sum], dim=1)
        full_mask = torch.cat([prompt_mask, batch.attention_mask], dim=1)
        if self.split and batch.word_states is not None:
            states = batch.word_states.to(words.dtype)
            pooled = self.lm.forward_upper(torch.cat([prompts.to(words.dtype), states], dim=1), full_mask, self.split)
        else:
            pooled = self.lm(torch.cat([prompts.to(words.dtype), words], dim=1), full_mask)  # (B, H)
        query = self.query(pooled.to(experts.dtype))  # (B, H)
        per_expert = torch.einsum("bh,mih->bmi", query, experts)  # (B, M, I)
        return torch.einsum("bm,bmi->bi", gate, per_expert)

    def forward(self, batch: Batch, experts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, I) for every item, and the gate weights (B, M)."""
        experts = self.expert_embeddings() if experts is None else experts  # (M, I, H)
        ctx = experts[:, batch.ctx_items]  # (M, B, C, H)
        cmask = batch.ctx_mask.unsqueeze(-1).to(ctx.dtype)  # (B, C, 1)
        ctx_mean = (ctx.mean(0) * cmask).sum(1) / cmask.sum(1).clamp(min=1.0)  # (B, H)
        words = self.lm.embed_tokens(batch.input_ids)  # (B, T, H) input word embeddings (the gate reads them)
        summary = self._summary(batch)
        gate = self._gate(batch, ctx_mean, words, summary)  # (B, M)
        probs = self.label_probs(batch)  # (B, C, 3)
        if self.config.lm_pathway:
            scores = self._lm_scores(batch, experts, ctx, gate, probs)
        else:
            scores = experts.new_zeros(batch.ctx_items.shape[0], self.config.n_items)
        if self.config.graph_pathway:
            scores = self._mix_graph_pathway(scores, batch, experts, ctx, gate, ctx_mean + summary)
        if self.config.item_bias:
            scores = scores + self.bias
        if self.cooccurrence_graphs:
            cooc = self.cooccurrence(batch.ctx_items, batch.ctx_mask, batch.cooc_offset)  # (G, B, I)
            cooc = cooc.to(scores.dtype)
            scores = scores + torch.einsum("g,gbi->bi", self.cooccurrence_weight.to(scores.dtype), cooc)
        if self.config.repeat_score:
            scores = scores + self.repeat_scores(batch, probs).to(scores.dtype)
        if self.cooccurrence_graphs or self.config.repeat_score:
            scores = scores * self.logit_scale.to(scores.dtype)
        return scores, gate

    def _mix_graph_pathway(
        self,
        lm_scores: torch.Tensor,
        batch: Batch,
        experts: torch.Tensor,
        ctx: torch.Tensor,
        gate: torch.Tensor,
        state: torch.Tensor,
    ) -> torch.Tensor:
        """(1 - g) x LM scores + g x per-view cosine(mean of context items, candidate), g = 0 without context."""
        cmask = batch.ctx_mask.to(ctx.dtype)  # (B, C)
        ctx_query = F.normalize(torch.einsum("mbch,bc->mbh", F.normalize(ctx, dim=-1), cmask), dim=-1)  # (M, B, H)
        per_view = torch.einsum("mbh,mih->bmi", ctx_query, F.normalize(experts, dim=-1))  # (B, M, I)
        graph_scores = self.path_scale * torch.einsum("bm,bmi->bi", gate, per_view)
        if self.config.graphs:
            diffused = self.diffusion(batch.ctx_items, batch.ctx_mask).to(graph_scores.dtype)  # (G, B, I)
            graph_scores = graph_scores + torch.einsum("g,gbi->bi", self.diffusion_weight, diffused)
        has_ctx = batch.ctx_mask.any(1, keepdim=True).to(ctx.dtype)  # (B, 1)
        mix = torch.sigmoid(self.path_gate(state)) * has_ctx  # (B, 1)
        return (1 - mix) * lm_scores + mix * graph_scores

    # -- losses ----------------------------------------------------------------------------------------------
    def alignment_loss(self, experts: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """InfoNCE between every pair of views over ``items`` (MSCRS); 0 with a single view."""
        views = F.normalize(experts[:, items], dim=-1)  # (M, N, H)
        labels = torch.arange(len(items), device=items.device)
        losses = [
            F.cross_entropy(views[a] @ views[b].T / self.config.temperature, labels)
            for a in range(len(views))
            for b in range(a + 1, len(views))
        ]
        return torch.stack(losses).mean() if losses else experts.new_zeros(())

    @staticmethod
    def explore_loss(scores: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy over the samples whose target is not a context item, with the context items masked
        out of the softmax (RepeatNet's explore mode); 0 when every sample is a repeat."""
        hits = torch.zeros_like(scores).scatter_add_(1, batch.ctx_items, batch.ctx_mask.to(scores.dtype))
        in_ctx = hits > 0  # (B, I)
        explore = ~in_ctx.gather(1, batch.targets.view(-1, 1)).squeeze(1)  # (B,)
        if not bool(explore.any()):
            return scores.new_zeros(())
        masked = scores[explore].masked_fill(in_ctx[explore], float("-inf"))
        return F.cross_entropy(masked, batch.targets[explore])

    def sentiment_loss(self, batch: Batch) -> torch.Tensor:
        """Cross-entropy of the sentiment head against the observed labels of the batch's context items; 0
        without a head, mention texts or observed labels."""
        if not self.config.sentiment_head or batch.mention_states is None:
            return torch.zeros((), device=batch.ctx_items.device)
        observed = torch.ones_like(batch.ctx_mask[:, 0]) if batch.labels_observed is None else batch.labels_observed
        keep = batch.ctx_mask & observed.view(-1, 1)  # (B, C)
        if not bool(keep.any()):
            return batch.mention_states.new_zeros(())
        logits = self.sentiment(batch.mention_states[keep].to(torch.float32)).float()
        return F.cross_entropy(logits, batch.ctx_labels[keep])

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Full-softmax cross-entropy on the target + ``explore_weight`` x explore loss + ``align_weight`` x
        InfoNCE alignment + ``sentiment_weight`` x the sentiment head's loss. The full softmax keeps the repeat
        score calibrated (repeats push it up, context items that are not the target push it down); the explore
        loss trains the ranking of the other items."""
        experts = self.expert_embeddings()
        scores, _ = self(batch, experts)
        rec = F.cross_entropy(scores.float(), batch.targets)
        explore = self.explore_loss(scores.float(), batch) if self.config.explore_weight else rec.new_zeros(())
        items = torch.unique(torch.cat([batch.targets, batch.ctx_items[batch.ctx_mask]]))
        align = self.alignment_loss(experts.float(), items)
        sentiment = self.sentiment_loss(batch).to(rec.device)
        total = rec + self.config.explore_weight * explore + self.config.align_weight * align
        total = total + self.config.sentiment_weight * sentiment
        parts = {"rec": rec.item(), "explore": explore.item(), "align": align.item(), "sentiment": sentiment.item()}
        return total, parts
