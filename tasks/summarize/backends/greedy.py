"""Batched greedy decoding of a causal LM over stored KV states (the local backend's engine).

A call runs in two phases:
- **prefill**: the prompts' tokens that no stored state holds are computed in small groups of similar length
  (``prefill_rows`` rows per forward; on a CPU a long prompt is already a large matrix product, so big groups
  mostly add padding), each row continuing from its stored state, if any. Every row leaves with the logits of its
  last token and the KV state of its whole prompt.
- **decode**: all rows advance together one token per forward. Their states sit right-aligned in one padded
  past; the attention mask and position ids skip the padding, so each row sees exactly its own tokens at their
  own positions. Rows that have finished are dropped from the batch (``compact``), so the last long answers do
  not drag the finished rows' computation along.

Every state is a plain per-layer ``(kv_heads, tokens, head_dim)`` copy, so any prefix of it is a valid state for
the same leading tokens: a caller may continue from the common token prefix of a state and a new prompt.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class KVState:
    """The keys/values of a token sequence, per layer ``(kv_heads, len(ids), head_dim)``."""

    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def nbytes(self) -> int:
        """Memory held by the tensors."""
        return sum(k.nbytes + v.nbytes for k, v in self.layers)


@dataclass(frozen=True)
class Row:
    """One prompt to continue: its tokens, and how many leading ones ``state`` already holds."""

    ids: Sequence[int]
    past: int = 0
    state: KVState | None = None


@dataclass(frozen=True)
class Decoded:
    """One row's generated tokens (the stop token included when it stopped) and, when asked, its final state."""

    tokens: list[int]
    state: KVState | None


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def prefill_groups(rows: Sequence[Row], size: int) -> Iterator[list[int]]:
    """Row positions in groups of at most ``size``, by the number of tokens each row still has to compute."""
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i].ids) - rows[i].past, len(rows[i].ids)))
    for start in range(0, len(order), max(1, size)):
        yield order[start : start + max(1, size)]


class GreedyDecoder:
    """Greedy generation for one model.

    Args:
        model: a Hugging Face causal LM (eval mode).
        pad_id: the token fed to finished rows and to padding.
        stops: token ids that end an answer.
        prefill_rows: rows per prefill forward.
        compact: drop finished rows from the decode batch.
    """

    def __init__(
        self, model: torch.nn.Module, *, pad_id: int, stops: frozenset[int], prefill_rows: int, compact: bool = True
    ) -> None:
        self.model, self.pad_id, self.prefill_rows, self.compact = model, pad_id, prefill_rows, compact
        self.device = next(model.parameters()).device
        self._stops = torch.tensor(sorted(stops), device=self.device)

    def _cache(self, layers: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> object:
        from transformers import DynamicCache

        config = self.model.config  # type: ignore[attr-defined]
        return DynamicCache(layers, config=config) if layers else DynamicCache(config=config)

    @staticmethod
    def padded(states: Sequence[tuple[int, KVState | None]], width: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, each row's first ``n`` stored positions right-aligned in a zero-padded ``(rows, heads, width,
        dim)``."""
        template = next(s for _, s in states if s is not None)
        layers = []
        for layer, (k0, v0) in enumerate(template.layers):
            keys = k0.new_zeros((len(states), k0.shape[0], width, k0.shape[2]))
            values = v0.new_zeros((len(states), v0.shape[0], width, v0.shape[2]))
            for r, (n, state) in enumerate(states):
                if state is not None and n:
                    k, v = state.layers[layer]
                    keys[r, :, width - n :] = k[:, :n]
                    values[r, :, width - n :] = v[:, :n]
            layers.append((keys, values))
        return layers

    @staticmethod
    def extract(cache: object, mask: torch.Tensor, row: int, ids: Sequence[int]) -> KVState:
        """Row ``row`` of ``cache`` at its unmasked positions, which must hold exactly ``ids``."""
        index = mask.nonzero().squeeze(-1)
        if index.numel() != len(ids):
            raise RuntimeError(f"cache holds {index.numel()} positions for {len(ids)} tokens")
        layers = tuple(
            (layer.keys[row][:, index].clone(), layer.values[row][:, index].clone())  # type: ignore[attr-defined]
            for layer in cache.layers
        )  # type: ignore[attr-defined]
        return KVState(tuple(ids), layers)

    @torch.inference_mode()
    def prefill(self, rows: Sequence[Row]) -> tuple[torch.Tensor, list[KVState]]:
        """Each row's last-token logits ``(rows, vocab)`` and the state of its whole prompt."""
        logits: list[torch.Tensor | None] = [None] * len(rows)
        states: list[KVState | None] = [None] * len(rows)
        for group in prefill_groups(rows, self.prefill_rows):
            out, kept = self._prefill_group([rows[i] for i in group])
            for j, i in enumerate(group):
                logits[i], states[i] = out[j], kept[j]
        return torch.stack([x for x in logits if x is not None]), [s for s in states if s is not None]

    def _prefill_group(self, rows: list[Row]) -> tuple[torch.Tensor, list[KVState]]:
        width_past = max(r.past for r in rows)
        new = [list(r.ids[r.past :]) for r in rows]
        width_new = max(len(x) for x in new)
        mask = torch.zeros(len(rows), width_past + width_new, dtype=torch.long, device=self.device)
        block = torch.full((len(rows), width_new), self.pad_id, dtype=torch.long, device=self.device)
        for r, (row, x) in enumerate(zip(rows, new, strict=True)):
            mask[r, width_past - row.past : width_past] = 1
            mask[r, width_past + width_new - len(x) :] = 1
            block[r, width_new - len(x) :] = torch.tensor(x, dtype=torch.long)
        cache = self._cache(self.padded([(r.past, r.state) for r in rows], width_past) if width_past else None)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(
            input_ids=block,
            attention_mask=mask,
            position_ids=positions[:, width_past:],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
        return logits, [self.extract(cache, mask[r], r, row.ids) for r, row in enumerate(rows)]

    @torch.inference_mode()
    def decode(
        self, logits: torch.Tensor, states: Sequence[KVState], keep: Sequence[bool], *, max_new_tokens: int
    ) -> list[Decoded]:
        """Greedy answers of every row from its prompt state and last-token logits; ``keep[r]``: return row r's
        final state (its prompt and every answer token fed back, i.e. all but the last)."""
        n = len(states)
        lengths = [len(s.ids) for s in states]
        width = max(lengths)
        cache = self._cache(self.padded([(len(s.ids), s) for s in states], width))
        mask = torch.zeros(n, width, dtype=torch.long, device=self.device)
        for r, length in enumerate(lengths):
            mask[r, width - length :] = 1
        last = torch.tensor([length - 1 for length in lengths], device=self.device)
        live = list(range(n))  # batch position -> row
        active = torch.ones(n, dtype=torch.bool, device=self.device)
        generated: list[list[int]] = [[] for _ in range(n)]
        finals: list[KVState | None] = [None] * n
        token = logits.argmax(-1)
        for step in range(max_new_tokens):
            for pos, t in zip(active.nonzero().squeeze(-1).tolist(), token[active].tolist(), strict=True):
                generated[live[pos]].append(t)
            active = active & ~torch.isin(token, self._stops)
            if step == max_new_tokens - 1 or not bool(active.any()):
                break
            finished = int((~active).sum())
            if self.compact and finished and finished >= len(live) // 8:
                for pos in (~active).nonzero().squeeze(-1).tolist():
                    finals[live[pos]] = self._final(
                        cache, mask, pos, states[live[pos]], generated[live[pos]], keep[live[pos]]
                    )
                keep_pos = active.nonzero().squeeze(-1)
                start = int(mask[keep_pos].any(0).nonzero()[0])  # leading columns that are padding for every row
                self._select(cache, keep_pos, start)
                mask, token, last, active = mask[keep_pos, start:], token[keep_pos], last[keep_pos], active[keep_pos]
                live = [live[p] for p in keep_pos.tolist()]
            feed = torch.where(active, token, torch.full_like(token, self.pad_id))
            mask = torch.cat([mask, active.long()[:, None]], dim=1)
            last = last + 1
            token = (
                self.model(
                    input_ids=feed[:, None],
                    attention_mask=mask,
                    position_ids=last[:, None],
                    past_key_values=cache,
                    use_cache=True,
                )
                .logits[:, -1]
                .argmax(-1)
            )
        for pos, row in enumerate(live):
            finals[row] = self._final(cache, mask, pos, states[row], generated[row], keep[row])
        return [Decoded(g, s) for g, s in zip(generated, finals, strict=True)]

    def _final(
        self, cache: object, mask: torch.Tensor, pos: int, state: KVState, tokens: list[int], keep: bool
    ) -> KVState | None:
        return self.extract(cache, mask[pos], pos, [*state.ids, *tokens[:-1]]) if keep else None

    @staticmethod
    def _select(cache: object, rows: torch.Tensor, start: int) -> None:
        """Keep only ``rows`` of every layer, from position ``start`` on."""
        for layer in cache.layers:  # type: ignore[attr-defined]
            layer.keys = layer.keys[rows, :, start:]
            layer.values = layer.values[rows, :, start:]
