"""The graph-prompt recommender (MSCRS + AMFRec): graph views of item ids, gated fusion, soft prompts, frozen LM.

Item side: learnable item id embeddings propagated over each item graph with LightGCN-style weightless
propagation (He et al., 2020: L layers, symmetric normalisation, layer mean), one view per graph, plus one
view per item feature modality (fixed vectors from ``item_embeddings``) and the raw id view. Each view is
projected into the LM hidden size (AMFRec's per-modality projections); a gate conditioned on the dialogue
context mixes them per example (AMFRec's gated mixture of experts). An InfoNCE loss aligns the views of the
same item (MSCRS). Dialogue side: soft prompt vectors — built from the fused embeddings of the context
items and the preference-summary embedding — are prepended to the dialogue's token embeddings and read by
the frozen LM; its pooled output scores every item by dot product with the fused item embeddings.
Only the id embeddings, projections, gate and prompt encoder train.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from training.lm import FrozenLM


@dataclass(frozen=True)
class ModelConfig:
    """Architecture; ``graphs`` / ``modalities`` name the views actually present (absent ones were skipped)."""

    n_items: int
    graphs: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ()
    feature_dims: tuple[int, ...] = ()  # aligned with modalities
    id_dim: int = 64
    layers: int = 2
    n_prompts: int = 2
    max_context_items: int = 8
    max_context_tokens: int = 64
    gating: bool = True
    use_summary: bool = True
    align_weight: float = 0.1
    temperature: float = 0.2
    extra: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-serialisable form (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of ``to_dict``."""
        tuples = {k: tuple(v) for k, v in data.items() if k in ("graphs", "modalities", "feature_dims")}
        return cls(**(data | tuples))

    @property
    def experts(self) -> tuple[str, ...]:
        return ("id", *(f"graph:{g}" for g in self.graphs), *(f"feat:{m}" for m in self.modalities))


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

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(**{k: v.to(device) for k, v in vars(self).items()})


def normalized_adjacency(edge_index: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetrised, self-loop-free, D^-1/2 A D^-1/2 adjacency as (indices (2, E), values (E,))."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both = both[:, both[0] != both[1]]
    both = torch.unique(both, dim=1)  # sorted, de-duplicated: deterministic order
    deg = torch.zeros(n).index_add_(0, both[0], torch.ones(both.shape[1]))
    inv = deg.clamp(min=1).pow(-0.5)
    return both, inv[both[0]] * inv[both[1]]


class GraphPromptRecommender(nn.Module):
    """Scores all items for a dialogue context. See the module docstring."""

    def __init__(self, config: ModelConfig, lm: FrozenLM) -> None:
        super().__init__()
        self.config, self.lm = config, lm
        hidden, n = lm.hidden_size, config.n_items
        self.item_emb = nn.Embedding(n, config.id_dim)
        nn.init.normal_(self.item_emb.weight, std=0.1)
        for g in config.graphs:  # filled by set_graph / load_state_dict
            self.register_buffer(f"adj_index_{g}", torch.zeros(2, 0, dtype=torch.long))
            self.register_buffer(f"adj_value_{g}", torch.zeros(0))
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

    def set_graph(self, graph: str, edge_index: torch.Tensor) -> None:
        """Install one graph's (E,) edges as its normalised adjacency."""
        index, value = normalized_adjacency(edge_index, self.config.n_items)
        setattr(self, f"adj_index_{graph}", index)
        setattr(self, f"adj_value_{graph}", value)

    def set_features(self, modality: str, vectors: torch.Tensor) -> None:
        """Install one modality's (I, d) fixed item vectors (zeros for items without one)."""
        getattr(self, f"feat_{modality}").copy_(vectors)

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

    def forward(self, batch: Batch, experts: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B, I) for every item, and the gate weights (B, M)."""
        experts = self.expert_embeddings() if experts is None else experts  # (M, I, H)
        ctx = experts[:, batch.ctx_items]  # (M, B, C, H)
        cmask = batch.ctx_mask.unsqueeze(-1).to(ctx.dtype)  # (B, C, 1)
        ctx_mean = (ctx.mean(0) * cmask).sum(1) / cmask.sum(1).clamp(min=1.0)  # (B, H)
        words = self.lm.embed_tokens(batch.input_ids)  # (B, T, H)
        summary = self._summary(batch)
        gate = self._gate(batch, ctx_mean, words, summary)  # (B, M)
        fused_ctx = torch.einsum("bm,mbch->bch", gate, ctx) + self.label_emb(batch.ctx_labels)  # (B, C, H)
        fused_mean = (fused_ctx * cmask).sum(1) / cmask.sum(1).clamp(min=1.0)
        base = self.prompt_base + self.prompt_mlp(fused_mean).view(-1, self.config.n_prompts, fused_mean.shape[-1])
        prompts = torch.cat([base, fused_ctx, summary.unsqueeze(1)], dim=1)  # (B, P, H)
        ones = torch.ones(base.shape[:2], dtype=batch.attention_mask.dtype, device=words.device)
        has_sum = (batch.has_summary & self.config.use_summary).to(batch.attention_mask.dtype).unsqueeze(1)
        prompt_mask = torch.cat([ones, batch.ctx_mask.to(ones.dtype), has_sum], dim=1)
        pooled = self.lm(torch.cat([prompts.to(words.dtype), words], dim=1),
                         torch.cat([prompt_mask, batch.attention_mask], dim=1))  # (B, H)
        query = self.query(pooled.to(experts.dtype))  # (B, H)
        per_expert = torch.einsum("bh,mih->bmi", query, experts)  # (B, M, I)
        return torch.einsum("bm,bmi->bi", gate, per_expert), gate

    # -- losses ----------------------------------------------------------------------------------------------
    def alignment_loss(self, experts: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """InfoNCE between every pair of views over ``items`` (MSCRS); 0 with a single view."""
        views = F.normalize(experts[:, items], dim=-1)  # (M, N, H)
        labels = torch.arange(len(items), device=items.device)
        losses = [
            F.cross_entropy(views[a] @ views[b].T / self.config.temperature, labels)
            for a in range(len(views)) for b in range(a + 1, len(views))
        ]
        return torch.stack(losses).mean() if losses else experts.new_zeros(())

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Full-softmax cross-entropy on the target + ``align_weight`` x InfoNCE alignment."""
        experts = self.expert_embeddings()
        scores, _ = self(batch, experts)
        rec = F.cross_entropy(scores.float(), batch.targets)
        items = torch.unique(torch.cat([batch.targets, batch.ctx_items[batch.ctx_mask]]))
        align = self.alignment_loss(experts.float(), items)
        total = rec + self.config.align_weight * align
        return total, {"rec": rec.item(), "align": align.item()}
