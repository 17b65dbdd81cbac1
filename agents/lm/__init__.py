"""Language-model policy: any Hugging Face causal LM + tokenizer, optional LoRA.

The embedded default (no hub needed) is a small character-level Llama-style transformer
with a tokenizer defined in code; see :mod:`agents.lm.tokenizer` and :mod:`agents.lm.model`.
Heavy imports (torch, transformers, peft) happen only when these modules are imported.
"""
