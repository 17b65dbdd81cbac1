"""Language models built from a published config shape with random weights, for speed and memory
benchmarks: a model of the same shape runs as fast as the real checkpoint, and nothing is downloaded.

``qwen2.5-0.5b`` and ``qwen2.5-1.5b`` are the Qwen2 architecture (transformers' ``Qwen2Config``,
q/k/v biases, RMSNorm, SwiGLU, rotary, grouped-query attention) at the sizes of the published
Qwen2.5 checkpoints' ``config.json``: 0.5B = hidden 896, 24 layers, 14 heads / 2 KV heads,
intermediate 4864, vocabulary 151,936, tied embeddings (494M parameters); 1.5B = hidden 1536,
28 layers, 12 heads / 2 KV heads, intermediate 8960, vocabulary 151,936, tied (1.54B). ``tiny`` is
a 2-layer model of the same architecture for CPU smoke runs of the benches (its vocabulary is the
tokenizer's).

Tokenizer: any local one (``--shape-tokenizer``: a Hugging Face tokenizer directory or a named
model, default SmolLM2-135M-Instruct's byte-level BPE with its ChatML template; Qwen2.5's own
tokenizer is also byte-level BPE with ChatML, so prompts get about as many tokens). Its 49,152
tokens are fewer than the model's 151,936 rows, as Qwen2.5's 151,665 are: a random model samples
ids past the tokenizer's end, which decode to nothing (the token ids, not the text, are what is
trained on, and every completion has a fixed length in the GRPO benches).

Weights are bfloat16 on CUDA (as ``LMPolicy.from_pretrained`` loads a checkpoint there; trainers
upcast what they train) and float32 elsewhere, built directly on the device.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config

from agents.policies.lm.model import default_dtype, resolve_source
from agents.policies.lm.policy import LMPolicy

_QWEN25_COMMON: dict[str, Any] = {
    "vocab_size": 151936, "tie_word_embeddings": True, "hidden_act": "silu", "rms_norm_eps": 1e-6,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "use_sliding_window": False,
    "attention_dropout": 0.0, "initializer_range": 0.02,
}
SHAPES: dict[str, dict[str, Any]] = {
    "qwen2.5-0.5b": {**_QWEN25_COMMON, "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                     "num_key_value_heads": 2, "intermediate_size": 4864},
    "qwen2.5-1.5b": {**_QWEN25_COMMON, "hidden_size": 1536, "num_hidden_layers": 28, "num_attention_heads": 12,
                     "num_key_value_heads": 2, "intermediate_size": 8960},
    # CPU smoke runs: same architecture, vocabulary = the tokenizer's (set in shape_config).
    "tiny": {**_QWEN25_COMMON, "vocab_size": None, "hidden_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128},
}
DEFAULT_TOKENIZER = "smollm2-135m-instruct"


def load_tokenizer(source: str | Path) -> Any:
    """A tokenizer from a local directory (a tokenizer alone, or a model's) or a named model
    (converted into the cache if needed)."""
    if Path(source).expanduser().is_dir():
        return AutoTokenizer.from_pretrained(Path(source).expanduser(), local_files_only=True, trust_remote_code=False)
    where, local_only = resolve_source(source)
    return AutoTokenizer.from_pretrained(where, local_files_only=local_only, trust_remote_code=False)


def shape_config(shape: str, tokenizer: Any) -> Qwen2Config:
    if shape not in SHAPES:
        raise ValueError(f"unknown model shape {shape!r}; shapes: {', '.join(SHAPES)}")
    fields = dict(SHAPES[shape])
    fields["vocab_size"] = fields["vocab_size"] or len(tokenizer)
    if fields["vocab_size"] < len(tokenizer):
        raise ValueError(f"shape {shape!r} has {fields['vocab_size']} vocabulary rows, fewer than the "
                         f"tokenizer's {len(tokenizer)} tokens")
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return Qwen2Config(**fields, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos, pad_token_id=pad)


def shaped_policy(shape: str, tokenizer_source: str | Path, device: str | torch.device, seed: int = 0) -> LMPolicy:
    """A randomly initialised ``shape`` model (seeded) on ``device`` with a local tokenizer, as an LMPolicy.

    ``device="meta"`` builds no weights: for parameter counts and tokenization only.
    """
    tokenizer = load_tokenizer(tokenizer_source)
    config = shape_config(shape, tokenizer)
    device = torch.device(device)
    dtype = torch.float32 if device.type == "meta" else default_dtype(device)
    torch.manual_seed(seed)  # CPU and CUDA generators: the same weights for every arm on one device
    with device:  # allocate (and initialise) on the device directly: no CPU copy of a 1.5B model
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.bos_token_id = config.bos_token_id
    return LMPolicy(model, tokenizer, base_model=f"random {shape} ({tokenizer_source} tokenizer)", device=device)


def describe(shape: str, tokenizer_source: str | Path) -> dict[str, Any]:
    """What a report says about a shaped model (parameters counted on the meta device)."""
    policy = shaped_policy(shape, tokenizer_source, "meta")
    config = policy.model.config
    return {"shape": shape, "architecture": type(policy.model).__name__, "parameters": policy.num_parameters(),
            "hidden_size": config.hidden_size, "layers": config.num_hidden_layers,
            "heads": config.num_attention_heads, "kv_heads": config.num_key_value_heads,
            "intermediate_size": config.intermediate_size, "vocab_size": config.vocab_size,
            "tokenizer": str(tokenizer_source), "tokenizer_tokens": len(policy.tokenizer),
            "init": "random (seed 0)"}
