"""The language-model policy: chat prompts in, sampled completions (and their tokens) out.

``act`` samples a whole batch at once (left-padded prompts, KV cache, stops at the
end-of-turn token) and records exactly what was sampled in ``last_tokens`` so GRPO trains on
those ids rather than on a re-tokenisation of the text. ``log_prob`` / ``log_prob_tokens`` /
``token_logprobs`` are the differentiable, teacher-forced counterparts SFT and GRPO train with.

Log-probs are of the temperature-scaled model distribution ``softmax(logits / temperature)``,
*not* renormalised over the top-p nucleus: that is the quantity the training-side functions
recompute, so importance ratios stay consistent. With ``top_p = 1`` it is exactly the
sampling probability.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from agents.core.checkpoint import (
    MANIFEST,
    CheckpointError,
    atomic_directory,
    read_manifest,
    write_json_atomic,
)
from agents.core.config import DEFAULT_LORA_TARGETS
from agents.core.trajectory import TurnTokens
from agents.policies.lm.catalog import provenance
from agents.policies.lm.model import (
    build_default_model,
    default_device,
    is_model_source,
    load_pretrained,
    resolve_source,
)
from agents.policies.lm.sampling import SamplingConfig
from agents.policies.lm.tokenizer import (
    CHAT_TEMPLATE,
    Message,
    build_char_tokenizer,
    encode_chats,
    encode_prompt,
    pad_right,
)

FORMAT_VERSION = 1

Observation = str | Sequence[Message]


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: tuple[str, ...] = field(default=DEFAULT_LORA_TARGETS)


class _NoRepeatInCompletion(LogitsProcessor):
    """Bans any token that would complete an ``n``-token run already in this completion.

    Unlike HF's ``no_repeat_ngram_size`` it ignores the (left-padded) prompt, and it reads only
    the newest token each step (generate calls it once per step) instead of the whole sequence.
    """

    def __init__(self, n: int, prompt_width: int) -> None:
        self.n = n
        self.prompt_width = prompt_width
        self.generated: list[list[int]] = []
        self.seen: list[dict[tuple[int, ...], set[int]]] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self.generated:
            self.generated = [[] for _ in range(input_ids.shape[0])]
            self.seen = [{} for _ in range(input_ids.shape[0])]
        if input_ids.shape[1] > self.prompt_width:
            for ids, token in zip(self.generated, input_ids[:, -1].tolist(), strict=True):
                ids.append(token)
        n = self.n
        banned_rows, banned_ids = [], []
        for row, (ids, table) in enumerate(zip(self.generated, self.seen, strict=True)):
            if len(ids) >= n:  # the run the last token completed
                table.setdefault(tuple(ids[-n:-1]), set()).add(ids[-1])
            if len(ids) >= n - 1:
                for token in table.get(tuple(ids[len(ids) - n + 1:]), ()):
                    banned_rows.append(row)
                    banned_ids.append(token)
        if not banned_rows:
            return scores
        scores = cast(torch.FloatTensor, scores.clone())
        scores[banned_rows, banned_ids] = float("-inf")
        return cast(torch.FloatTensor, scores)


class _RecordAndWarp(LogitsProcessor):
    """Temperature + top-p in one place, recording each sampled token's log-prob.

    HF processors never see the token that was chosen, but the next call's ``input_ids``
    ends with it; so each call gathers the previous step's log-prob and keeps only the
    current (batch, vocab) log-softmax, not one per step.
    """

    def __init__(self, temperature: float, top_p: float) -> None:
        self.temperature = temperature
        self.top_p = top_p
        self.pending: torch.Tensor | None = None
        self.recorded: list[torch.Tensor] = []

    def gather_pending(self, chosen: torch.Tensor) -> None:
        if self.pending is not None:
            self.recorded.append(self.pending.gather(-1, chosen[:, None]).squeeze(-1))
            self.pending = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.gather_pending(input_ids[:, -1])
        scaled = scores.float() / self.temperature
        self.pending = torch.log_softmax(scaled, dim=-1)
        if self.top_p >= 1.0:
            return cast(torch.FloatTensor, scaled)
        # Keep the smallest set of tokens whose probability reaches top_p (always the top one).
        sorted_logp, order = self.pending.sort(dim=-1, descending=True)
        mass_before = sorted_logp.exp().cumsum(dim=-1) - sorted_logp.exp()
        drop_sorted = mass_before >= self.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        return cast(torch.FloatTensor, scaled.masked_fill(drop, float("-inf")))


class LMPolicy:
    """A Hugging Face causal LM + tokenizer behind the :class:`~agents.policy.Policy` seam.

    Observations are user-prompt strings or lists of chat messages; actions are completion
    strings (special tokens removed). After ``act``, ``last_tokens[i]`` holds the prompt ids,
    sampled completion ids (including the end-of-turn token when reached) and their log-probs.
    """

    kind = "lm"
    accepts_messages = True  # observations may be chat messages (rollout passes an env's info["messages"])

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        sampling: SamplingConfig | None = None,
        base_model: str = "default",
        base_weights: str | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.device = torch.device(device) if device is not None else default_device()
        # PreTrainedModel, or a peft PeftModel after enable_lora (nn.Module.to: in place).
        self.model: Any = torch.nn.Module.to(model, self.device)
        self.tokenizer = _prepare_tokenizer(tokenizer)
        self.sampling = sampling or SamplingConfig()
        self.base_model = base_model  # provenance, for humans: "default", a path or a hub id
        self.base_weights = base_weights  # where base weights reload from; None = saved with checkpoints
        self.lora: LoraSettings | None = None
        self.last_tokens: list[TurnTokens] | None = None
        self._reference_model: Any = None

    # ----------------------------------------------------------------- construction
    @classmethod
    def default(
        cls,
        seed: int = 0,
        *,
        device: torch.device | str | None = None,
        sampling: SamplingConfig | None = None,
        **config_overrides: Any,
    ) -> LMPolicy:
        """The embedded character-level model, freshly initialised from ``seed`` (no download)."""
        tokenizer = build_char_tokenizer()
        # float32 on every device: a model trained from scratch needs float32 weights (a bf16
        # weight swallows small AdamW updates); on a GPU the compute runs in bf16 (autocast).
        model = build_default_model(tokenizer, seed=seed, **config_overrides)
        return cls(model, tokenizer, sampling=sampling, device=device)

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        sampling: SamplingConfig | None = None,
    ) -> LMPolicy:
        """A named model (``smollm2-135m-instruct``), a ``.gguf`` file, any local Hugging Face
        causal-LM directory, or a hub id (which may download).

        A directory written by :meth:`save` (it holds ``policy.json``) is loaded with :meth:`load`.
        """
        if (Path(path_or_id).expanduser() / MANIFEST).is_file():
            policy = cls.load(Path(path_or_id).expanduser(), device=device)
            if sampling is not None:
                policy.sampling = sampling
            return policy
        source, local_only = resolve_source(path_or_id)
        device = torch.device(device) if device is not None else default_device()
        model = load_pretrained(source, device=device, dtype=dtype)
        tokenizer = _load_tokenizer(source, local_only)
        # A named model or GGUF is recorded by name (or file): a checkpoint that keeps only LoRA
        # adapters finds its base again even where the cache was cleared.
        recorded = provenance(path_or_id) or source
        return cls(model, tokenizer, sampling=sampling, base_model=recorded, base_weights=recorded, device=device)

    @staticmethod
    def is_model_source(spec: str | Path) -> bool:
        """Whether :meth:`from_pretrained` takes ``spec`` (a named model, ``.gguf``, HF directory, hub id)."""
        return is_model_source(spec)

    # ----------------------------------------------------------------- LoRA and reference
    def enable_lora(
        self,
        r: int = 8,
        alpha: int = 16,
        dropout: float = 0.0,
        target_modules: Sequence[str] = DEFAULT_LORA_TARGETS,
    ) -> None:
        """Freeze the base model and train low-rank adapters on ``target_modules``."""
        from peft import LoraConfig, get_peft_model  # heavy, and only LoRA needs it

        if self.lora is not None:
            raise RuntimeError("LoRA is already enabled on this policy")
        settings = LoraSettings(r, alpha, float(dropout), tuple(target_modules))
        config = LoraConfig(
            r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
            task_type="CAUSAL_LM",
        )
        self.model = get_peft_model(self.model, config)
        self.lora = settings

    def freeze_reference(self, saved: str | Path | None = None) -> None:
        """Fix the frozen reference of ``reference()`` (full fine-tuning): a snapshot of the
        current weights, or the weights :meth:`save_reference` wrote to ``saved``."""
        if saved is None:
            reference = copy.deepcopy(self.model)
        else:
            dtype = next(self.model.parameters()).dtype  # the dtype the snapshot was taken in
            reference = load_pretrained(saved, device=self.device, dtype=dtype)
            self._check_same_architecture(reference, saved)
        reference.eval()
        reference.requires_grad_(False)
        self._reference_model = reference

    def _check_same_architecture(self, reference: Any, saved: str | Path) -> None:
        """A reference must be this policy's network: the same parameter names and shapes
        (a log-ratio against another network means nothing, and would fail mid-run)."""
        ours = {k: tuple(v.shape) for k, v in self.model.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
        if ours == theirs:
            return
        missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
        shapes = [f"{k} {theirs[k]} vs {ours[k]}" for k in sorted(set(ours) & set(theirs)) if ours[k] != theirs[k]]
        detail = "; ".join(part for part in (
            f"{len(missing)} parameter(s) missing, e.g. {missing[0]}" if missing else "",
            f"{len(extra)} not in the policy, e.g. {extra[0]}" if extra else "",
            f"{len(shapes)} of another shape, e.g. {shapes[0]}" if shapes else "") if part)
        raise ValueError(f"the reference in {saved} is not this policy's architecture ({detail}); "
                         "it must be the weights the run started from")

    @property
    def has_reference(self) -> bool:
        """Whether ``reference()`` has weights to use: LoRA's base model or a frozen snapshot."""
        return self.lora is not None or self._reference_model is not None

    def save_reference(self, directory: str | Path) -> None:
        """Write the frozen reference's weights (a run resumes with the same reference)."""
        if self._reference_model is None:
            raise RuntimeError("no frozen reference to save: call freeze_reference() first")
        hf_logging.disable_progress_bar()  # as save(): no "Writing model shards" bar over the training bar
        with atomic_directory(directory) as staging:
            self._reference_model.save_pretrained(staging, safe_serialization=True)

    @contextlib.contextmanager
    def reference(self) -> Iterator[LMPolicy]:
        """Within the block, this policy computes with the reference weights (for a KL term).

        With LoRA that is the base model (adapter disabled); otherwise the snapshot taken by
        :meth:`freeze_reference`.
        """
        if self.lora is not None:
            with self.model.disable_adapter():
                yield self
            return
        if self._reference_model is None:
            raise RuntimeError("no reference model: call freeze_reference() first, or enable_lora()")
        current, self.model = self.model, self._reference_model
        try:
            yield self
        finally:
            self.model = current

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def float32_trainable_parameters(self) -> None:
        """Keep the weights that train in float32 (call before building the optimizer).

        Checkpoints load in bf16 on a GPU to save memory; AdamW on bf16 weights loses every
        update smaller than the weight's rounding step, so full fine-tuning upcasts them (LoRA
        adapters are float32 already; a frozen bf16 base stays as it is). Compute keeps bf16
        speed through :meth:`autocast`.
        """
        for param in self.trainable_parameters():
            if param.is_floating_point() and param.dtype != torch.float32:
                param.data = param.data.float()

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 autocast on CUDA (float32 weights, bf16 matmuls); nothing on CPU, where bf16 is
        slower and coarser."""
        if self.device.type == "cuda":
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def vocab_size(self) -> int:
        """Rows of the input embedding: token ids must be below this."""
        return int(self.model.get_input_embeddings().num_embeddings)

    def num_parameters(self, trainable_only: bool = False) -> int:
        params = self.trainable_parameters() if trainable_only else list(self.model.parameters())
        return sum(p.numel() for p in params)

    def check_compatible(self, env: Any) -> None:
        """Refuse an env whose observations are not text: a language model acts on prompts."""
        if not isinstance(env.observation_space, spaces.Text):
            name = env.spec.id if getattr(env, "spec", None) is not None else type(env.unwrapped).__name__
            raise CheckpointError(
                f"this is a language-model checkpoint: it acts on text envs (Wordle-v0, GSM8K-v0), but {name} "
                f"has {type(env.observation_space).__name__} observations; evaluate a Gaussian MLP checkpoint "
                "(trained with sft/trpo on that env) there")

    # ----------------------------------------------------------------- acting
    def encode_prompts(self, obs_batch: Sequence[Observation]) -> list[list[int]]:
        return [encode_prompt(self.tokenizer, obs) for obs in obs_batch]

    @torch.no_grad()
    def act(
        self, obs_batch: Sequence[Observation], deterministic: bool = False
    ) -> tuple[list[str], np.ndarray]:
        """Sample one completion per observation; returns texts and summed log-probs.

        Randomness comes from torch's global RNG (seeded once per run).
        """
        prompts = self.encode_prompts(obs_batch)
        if not prompts:
            self.last_tokens = []
            return [], np.zeros(0)
        width = max(len(p) for p in prompts)
        pad_id = self.tokenizer.pad_token_id
        # Left padding: every row's next token is generated at the same column.
        input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids):] = torch.tensor(ids)
            attention_mask[row, width - len(ids):] = 1
        recorder = _RecordAndWarp(self.sampling.temperature, 1.0 if deterministic else self.sampling.top_p)
        eos_ids = self.stop_ids()
        # A fresh config so a checkpoint's own generation defaults (top_k=50, repetition
        # penalty, ...) cannot change the distribution behind the recorded log-probs.
        generation_config = GenerationConfig(
            do_sample=not deterministic,
            max_new_tokens=self.sampling.max_new_tokens,
            top_k=0 if not deterministic else None,  # HF's default top_k=50 would truncate sampling
            eos_token_id=eos_ids,
            pad_token_id=pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        processors: list[LogitsProcessor] = [recorder]  # last: it records what is sampled from
        if self.sampling.no_repeat_ngram_size:
            processors.insert(0, _NoRepeatInCompletion(self.sampling.no_repeat_ngram_size, width))
        was_training = self.model.training
        self.model.eval()
        try:
            with self.autocast():
                sequences = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                    generation_config=generation_config,
                    logits_processor=LogitsProcessorList(processors),
                )
        finally:
            self.model.train(was_training)
        new_tokens = sequences[:, width:]
        recorder.gather_pending(new_tokens[:, -1])
        step_logprobs = torch.stack(recorder.recorded, dim=1).cpu()
        new_tokens = new_tokens.cpu()

        texts: list[str] = []
        sums = np.zeros(len(prompts))
        turns: list[TurnTokens] = []
        stop = set(eos_ids)
        for row, prompt_ids in enumerate(prompts):
            ids = new_tokens[row].tolist()
            length = next((i + 1 for i, t in enumerate(ids) if t in stop), len(ids))
            completion = ids[:length]
            logprobs = step_logprobs[row, :length].tolist()
            turns.append(TurnTokens(tuple(prompt_ids), tuple(completion), tuple(logprobs)))
            texts.append(str(self.tokenizer.decode(completion, skip_special_tokens=True)))
            sums[row] = float(sum(logprobs))
        self.last_tokens = turns
        return texts, sums

    def stop_ids(self) -> list[int]:
        """Token ids that end a completion: the tokenizer's end of turn and the model's own."""
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif configured:
            ids.update(configured)
        return sorted(i for i in ids if i is not None)

    # ----------------------------------------------------------------- scoring (differentiable)
    def token_logprobs(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, temperature: float = 1.0,
        module: torch.nn.Module | None = None, score_from: int = 1,
    ) -> torch.Tensor:
        """Teacher-forced ``log p(input_ids[:, t] | input_ids[:, :t])``, shape ``(batch, length)``.

        Aligned with ``input_ids`` (each row's first token and padding are 0) so a loss mask from
        :func:`~agents.policies.lm.tokenizer.encode_chats` or :meth:`batch_turns` multiplies directly.
        Works with left or right padding: positions are counted from each row's first token.
        ``score_from``: the first column scored; the columns before it are 0 and the output layer
        never runs there (right-padded long prompts with short replies skip most of its work).
        """
        input_ids = input_ids.to(self.device)
        attention_mask = attention_mask.to(self.device)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        score_from = max(1, score_from)
        with self.autocast():
            # ``module``: the model's training wrapper when several processes train it together;
            # logits_to_keep: the last N positions' logits only, those at score_from - 1 on
            keep = {"logits_to_keep": input_ids.shape[1] - score_from + 1} if score_from > 1 else {}
            output = (module or self.model)(input_ids=input_ids, attention_mask=attention_mask,
                                            position_ids=position_ids, use_cache=False, **keep)
        logits = output.logits
        logits = logits[:, :-1].float() / temperature  # float32: bf16 log-softmax is too coarse for ratios
        targets = input_ids[:, score_from:]
        chosen = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - logits.logsumexp(dim=-1)
        # A token counts only if it and its predecessor are real (with left padding the first
        # real token's predecessor is a pad: it has no context, like column 0).
        scored = (attention_mask[:, score_from:] * attention_mask[:, score_from - 1 : -1]).to(chosen.dtype)
        return torch.nn.functional.pad(chosen * scored, (score_from, 0))

    def batch_turns(self, turns: Sequence[TurnTokens]) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids``/``attention_mask``/``loss_mask`` (1 on completion tokens)."""
        sequences = [list(t.prompt_ids) + list(t.completion_ids) for t in turns]
        masks = [[0] * len(t.prompt_ids) + [1] * len(t.completion_ids) for t in turns]
        return pad_right(sequences, masks, self.tokenizer.pad_token_id)

    def log_prob_tokens(self, turns: Sequence[TurnTokens], temperature: float | None = None) -> torch.Tensor:
        """Summed log-prob of each turn's completion ids given its prompt ids, shape ``(batch,)``.

        ``temperature`` defaults to the sampling temperature, so values match ``act``'s.
        """
        batch = self.batch_turns(turns)
        logprobs = self.token_logprobs(
            batch["input_ids"], batch["attention_mask"], temperature or self.sampling.temperature
        )
        return (logprobs * batch["loss_mask"].to(logprobs.device, logprobs.dtype)).sum(dim=-1)

    def log_prob(
        self,
        obs_batch: Sequence[Observation],
        completions: Sequence[str],
        *,
        end_of_turn: bool = True,
        temperature: float | None = None,
    ) -> torch.Tensor:
        """Summed log-prob of each completion text (plus its end-of-turn token), shape ``(batch,)``.

        Texts are re-tokenised; to score exactly what ``act`` sampled use :meth:`log_prob_tokens`.
        """
        if len(obs_batch) != len(completions):
            raise ValueError(f"{len(obs_batch)} observations but {len(completions)} completions")
        turns = []
        for prompt_ids, text in zip(self.encode_prompts(obs_batch), completions, strict=True):
            ids = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            if end_of_turn:
                ids.append(self.tokenizer.eos_token_id)
            turns.append(TurnTokens(tuple(prompt_ids), tuple(ids), (0.0,) * len(ids)))
        return self.log_prob_tokens(turns, temperature)

    def encode_chats(
        self, conversations: Sequence[Sequence[Message]], max_length: int | None = None
    ) -> dict[str, torch.Tensor]:
        """Whole conversations -> ``input_ids``/``attention_mask``/``loss_mask`` (assistant tokens)."""
        return encode_chats(self.tokenizer, conversations, max_length)

    # ----------------------------------------------------------------- persistence
    def save(self, directory: str | Path, weights: dict[str, Any] | None = None) -> None:
        """Write ``policy.json``, ``tokenizer/``, ``model/`` (base weights) and ``adapter/`` (LoRA).

        Base weights are skipped only for a LoRA policy whose base came from ``from_pretrained``
        (recorded in ``base_weights`` and reloaded from there). ``weights``: the whole state dict
        of a model that is sharded over processes (gathered by :func:`agents.core.fsdp.full_weights`).
        """
        if weights is not None and self.lora is not None:
            raise ValueError("weights= saves a fully fine-tuned model; a LoRA policy saves its adapter")
        # A "Writing model shards" bar for every periodic checkpoint would drown the training bar.
        hf_logging.disable_progress_bar()
        save_base = self.lora is None or self.base_weights is None
        with atomic_directory(directory) as staging:
            self.tokenizer.save_pretrained(staging / "tokenizer")
            if self.lora is None:
                self.model.save_pretrained(staging / "model", state_dict=weights, safe_serialization=True)
            else:
                self.model.save_pretrained(staging / "adapter", safe_serialization=True)
                if save_base:
                    base = self.model.get_base_model()
                    base.save_pretrained(
                        staging / "model", state_dict=_base_state_dict(base), safe_serialization=True
                    )
            write_json_atomic(staging / "policy.json", {
                "kind": self.kind,
                "format": FORMAT_VERSION,
                "base_model": self.base_model,
                "base_weights": "model" if save_base else self.base_weights,
                "lora": None if self.lora is None else {**asdict(self.lora),
                                                        "target_modules": list(self.lora.target_modules)},
                "sampling": asdict(self.sampling),
                "model_type": getattr(self.model.config, "model_type", None),
                "num_parameters": self.num_parameters(),
            })

    @classmethod
    def load(
        cls, directory: str | Path, device: torch.device | str | None = None, *, merge_lora: bool = False
    ) -> LMPolicy:
        """Load a checkpoint written by :meth:`save`; LoRA adapters are re-attached (trainable)
        or, with ``merge_lora=True``, merged into the base weights."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest["kind"] != cls.kind:
            raise CheckpointError(f"{directory} holds a {manifest['kind']!r} policy, not an 'lm' policy")
        for key in ("base_weights", "sampling", "lora"):
            if key not in manifest:
                raise CheckpointError(f"{directory / 'policy.json'} lacks {key!r}")
        for needed in ["tokenizer"] + (["adapter"] if manifest["lora"] else []):
            if not (directory / needed).is_dir():
                raise CheckpointError(f"{directory} is incomplete: {needed}/ is missing")
        device = torch.device(device) if device is not None else default_device()
        base_weights = manifest["base_weights"]
        base_source = str(directory / "model") if base_weights == "model" else str(base_weights)
        model = load_pretrained(base_source, device=device)
        tokenizer = _load_tokenizer(str(directory / "tokenizer"), local_only=True)
        try:
            sampling = SamplingConfig(**manifest["sampling"])
        except (TypeError, ValueError) as err:
            raise CheckpointError(f"{directory / 'policy.json'}: bad sampling settings ({err})") from err
        policy = cls(
            model,
            tokenizer,
            sampling=sampling,
            base_model=str(manifest.get("base_model", "default")),
            base_weights=None if base_weights == "model" else base_weights,
            device=device,
        )
        if manifest["lora"]:
            policy._attach_adapter(directory / "adapter", manifest["lora"], merge=merge_lora)
        return policy

    def _attach_adapter(self, adapter_dir: Path, settings: dict[str, Any], merge: bool) -> None:
        from peft import PeftModel  # heavy, and only LoRA needs it

        try:
            model = PeftModel.from_pretrained(self.model, str(adapter_dir), is_trainable=not merge)
        except Exception as err:  # peft raises assorted types for unreadable adapters
            raise CheckpointError(f"cannot load the LoRA adapter in {adapter_dir}: {err}") from err
        if merge:
            # Merged weights become the new base: they must be saved with the next checkpoint.
            self.model = model.merge_and_unload()
            self.base_weights = None
            return
        self.model = model
        self.lora = LoraSettings(
            int(settings["r"]), int(settings["alpha"]), float(settings["dropout"]),
            tuple(settings["target_modules"]),
        )


def _prepare_tokenizer(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # many base checkpoints ship without a pad token
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.padding_side = "left"
    return tokenizer


def _load_tokenizer(source: str, local_only: bool) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=False)
    except Exception as err:  # tokenizers/transformers raise assorted types for bad files
        raise CheckpointError(f"cannot load a tokenizer from {source!r}: {err}") from err


def _base_state_dict(peft_base: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The base model's own weights out of a LoRA-wrapped model (adapter tensors dropped)."""
    state = {}
    for name, tensor in peft_base.state_dict().items():
        if "lora_" in name:
            continue
        state[name.replace(".base_layer.", ".")] = tensor
    return state
