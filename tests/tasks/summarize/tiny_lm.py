"""A tiny randomly initialised causal LM with a word-level tokenizer built in-test (no download)."""

from __future__ import annotations

from pathlib import Path

_VOCAB = (
    "the user appears to have a preference for movies comedy drama action horror dark funny sad "
    "liked seen i love like watch films old new classic great fun scary summary so far said seeker "
    'movie mentioned since update in one or two sentences start with , . : - ( ) " none yet nothing'
)
WORDS = _VOCAB.split()
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_lm(folder: Path, *, seed: int = 0, initializer_range: float = 0.02) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer, saved like any HF model folder.

    A large ``initializer_range`` gives peaky attention and logits: the next token then depends on the whole
    context (positions included), which is what cache-reuse tests need to be able to fail.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<pad>", "<|im_start|>", "<|im_end|>"]
    vocab = {w: i for i, w in enumerate(dict.fromkeys([*specials, "system", "user", "assistant", *WORDS]))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split("<|im_start|>", "isolated"),
            pre_tokenizers.Split("<|im_end|>", "isolated"),
            pre_tokenizers.Whitespace(),
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>", bos_token="<|im_start|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<|im_end|>"],
        bos_token_id=vocab["<|im_start|>"],
        initializer_range=initializer_range,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
