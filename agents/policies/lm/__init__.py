"""Language-model policy: any Hugging Face causal LM + tokenizer, optional LoRA.

The embedded default (no hub needed) is a small character-level Llama-style transformer
with a tokenizer defined in code; see :mod:`agents.policies.lm.tokenizer` and
:mod:`agents.policies.lm.model`. This package file imports nothing: torch, transformers and
peft load with the modules that need them (:mod:`~agents.policies.lm.sampling` needs none).
"""
