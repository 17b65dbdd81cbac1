"""Model construction and loading: the embedded default and any Hugging Face causal LM.

The default is a Llama-architecture decoder sized for fast CPU training on character-level
Wordle/arithmetic text (1.8M parameters, ``DEFAULT_MODEL_SIZE``). Llama rather than Qwen2: with
a Qwen2 config, ``AutoTokenizer`` reloads the character tokenizer as a byte-level one that
silently drops spaces and newlines.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.utils import logging as hf_logging

from agents.core.checkpoint import CheckpointError
from agents.policies.lm.catalog import catalog, local_checkpoint
from agents.policies.lm.tokenizer import build_char_tokenizer

# hidden 192 x 4 layers x 4 heads (head dim 48), SwiGLU 512: 1.8M parameters with the
# 125-token vocabulary; tied embeddings because a separate output matrix buys nothing here.
# Sized for CPU: a Wordle SFT step (batch 64, ~30 tokens) takes ~0.2 s on 2 cores, against
# ~0.35 s at hidden 256 / SwiGLU 768 (3.4M). Override any field with model_config.
DEFAULT_MODEL_SIZE: dict[str, Any] = {
    "hidden_size": 192,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 512,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}

# "org/name" as typed on the command line; anything else that does not exist is a missing path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device | str) -> torch.dtype:
    # Checkpoints load in bf16 on GPUs (half the memory); trainers upcast the weights they train
    # (LMPolicy.float32_trainable_parameters). CPUs get no benefit from bf16 and lose precision.
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def default_model_config(tokenizer: PreTrainedTokenizerFast | None = None, **overrides: Any) -> LlamaConfig:
    """The default architecture; ``overrides`` change any ``LlamaConfig`` field (e.g. size)."""
    if tokenizer is None:
        tokenizer = build_char_tokenizer()
    fields: dict[str, Any] = {
        **DEFAULT_MODEL_SIZE,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    unknown = sorted(set(overrides) - _llama_config_fields())
    if unknown:
        raise ValueError(f"model_config: unknown LlamaConfig field(s) {', '.join(unknown)}; "
                         f"fields include {', '.join(sorted(DEFAULT_MODEL_SIZE))}")
    fields.update(overrides)
    return LlamaConfig(**fields)


def _llama_config_fields() -> set[str]:
    # LlamaConfig keeps any keyword as an attribute, so a misspelt size would silently do nothing.
    parameters = inspect.signature(LlamaConfig.__init__).parameters
    named = {name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return (named - {"self"}) | set(LlamaConfig().to_dict()) | set(DEFAULT_MODEL_SIZE)


def build_default_model(
    tokenizer: PreTrainedTokenizerFast, seed: int = 0, **config_overrides: Any
) -> LlamaForCausalLM:
    """A freshly initialised default model; the same seed gives the same weights."""
    config = default_model_config(tokenizer, **config_overrides)
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"vocab_size {config.vocab_size} is smaller than the tokenizer ({len(tokenizer)})")
    # Seed a private generator's worth of state without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def is_model_source(spec: str | Path) -> bool:
    """Whether ``spec`` names a model :func:`resolve_source` can load: a named model, a ``.gguf``
    file, a Hugging Face directory (``config.json``) or an ``org/name`` hub id."""
    text = str(spec)
    return (text in catalog() or text.endswith(".gguf") or (Path(text).expanduser() / "config.json").is_file()
            or is_hub_id(text))


def is_hub_id(path_or_id: str | Path) -> bool:
    """True for an ``org/name`` string that is not an existing local path."""
    text = str(path_or_id)
    return not Path(text).exists() and _HUB_ID.match(text) is not None and not text.startswith((".", "~"))


def resolve_source(path_or_id: str | Path) -> tuple[str, bool]:
    """``(where, local_only)``: a named model or ``.gguf`` file (converted into the cache on first
    use, :mod:`agents.policies.lm.catalog`), an existing local directory, or a hub id."""
    converted = local_checkpoint(path_or_id)
    if converted is not None:
        return str(converted), True
    text = str(path_or_id)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"--model {text!r} is a file; point at a Hugging Face model directory")
        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is not a Hugging Face model directory: config.json is missing")
        return str(path.absolute()), True  # absolute: checkpoints record it as base_weights
    if is_hub_id(text):
        return text, False
    raise CheckpointError(
        f"--model {text!r}: no such local directory, and not a named model ({', '.join(sorted(catalog()))}), "
        "a .gguf file or an 'org/name' hub id. Pass a directory written by save_pretrained, or omit --model "
        "for the built-in default."
    )


def load_pretrained(
    path_or_id: str | Path,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> PreTrainedModel:
    """Load any Hugging Face causal LM from a local directory (or a hub id, which may download).

    Weights load through safetensors only and remote code never runs.
    """
    hf_logging.disable_progress_bar()  # a "Loading weights" bar per load clutters every CLI
    source, local_only = resolve_source(path_or_id)
    device = torch.device(device) if device is not None else default_device()
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source,
            dtype=dtype or default_dtype(device),
            local_files_only=local_only,
            trust_remote_code=False,
            use_safetensors=True,
        )
    except Exception as err:  # safetensors, json and config errors come in assorted types
        where = "local directory" if local_only else "hub id (no such local directory; is the network up?)"
        raise CheckpointError(f"cannot load a causal LM from {where} {source!r}: {err}") from err
    torch.nn.Module.to(model, device)  # in place; transformers' typed .to wrapper confuses mypy
    return model
