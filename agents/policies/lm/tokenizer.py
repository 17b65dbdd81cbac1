"""The embedded character tokenizer and chat encoding helpers.

One token per character keeps the vocabulary (and so the model's embedding and softmax)
tiny, and is enough for Wordle feedback and arithmetic. It is a real
``PreTrainedTokenizerFast`` (``tokenizers`` BPE model with no merges), so it saves, reloads
and renders chat templates like any Hugging Face tokenizer. Like every HF tokenizer it reads
a special-token string inside text (``"<|end|>"``) as that token; env prompts never contain one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, UNK, BOS, END_OF_TURN = "<pad>", "<unk>", "<bos>", "<|end|>"
# The output-format tags every env asks for are one token each (ordinary tokens: they stay in
# decoded text). A Wordle answer becomes 10 tokens instead of 36, which is most of a training
# sequence for the compact prompt.
FORMAT_TAGS: tuple[str, ...] = ("<think>", "</think>", "<guess>", "</guess>")
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, END_OF_TURN, SYSTEM, USER, ASSISTANT)

# Printable ASCII plus tab/newline, and the few non-ASCII characters the env prompts use
# (feedback marks, arrows, typographic quotes and dashes). Anything else becomes <unk>.
EXTRA_CHARACTERS = "✓✗→…‘’“”—–×÷−≤≥°•"
CHARACTERS: tuple[str, ...] = tuple(
    dict.fromkeys(c for c in string.printable if c not in "\r\x0b\x0c")
) + tuple(EXTRA_CHARACTERS)

# Each assistant turn is wrapped in {% generation %} (content *and* its end-of-turn token,
# which the model must learn to emit), so apply_chat_template(...,
# return_assistant_tokens_mask=True) marks exactly the tokens SFT trains on. Turns end with
# eos_token (<|end|> here) so the template also serves checkpoints that lack one of their own.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}{{ eos_token }}{% endgeneration %}"
    "{% elif message['role'] in ['system', 'user'] %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% else %}"
    "{{ raise_exception('unknown chat role: ' + message['role']) }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

Message = Mapping[str, str]


def build_char_tokenizer(model_max_length: int = 2048) -> PreTrainedTokenizerFast:
    """Build the character tokenizer: special tokens first (ids 0..6), then one id per character.

    ``eos_token`` is the end-of-turn marker, so ``generate`` stops where an assistant turn ends.
    """
    vocab = {token: index for index, token in enumerate(SPECIAL_TOKENS + CHARACTERS + FORMAT_TAGS)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    backend.decoder = decoders.Fuse()  # join characters back without separators
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=END_OF_TURN,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        chat_template=CHAT_TEMPLATE,
        model_max_length=model_max_length,
    )
    tokenizer.padding_side = "left"  # batched generation continues from the right edge
    tokenizer.add_tokens([AddedToken(tag, normalized=False) for tag in FORMAT_TAGS])
    return tokenizer


def as_messages(obs: str | Sequence[Message]) -> list[dict[str, str]]:
    """An observation as chat messages: a bare string is one user turn."""
    if isinstance(obs, str):
        return [{"role": "user", "content": obs}]
    return [dict(message) for message in obs]


def encode_prompt(tokenizer: PreTrainedTokenizerBase, obs: str | Sequence[Message]) -> list[int]:
    """Token ids of the chat-rendered prompt, ending with the assistant generation prompt."""
    text = tokenizer.apply_chat_template(as_messages(obs), tokenize=False, add_generation_prompt=True)
    # The template already writes bos; the tokenizer must not add specials again.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_chats(
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[Message]],
    max_length: int | None = None,
) -> dict[str, torch.Tensor]:
    """Tokenize whole conversations for supervised training, right-padded.

    Returns ``input_ids``, ``attention_mask`` and ``loss_mask`` (1 on every assistant token,
    including each turn's end-of-turn token), all ``(batch, length)`` int64 tensors aligned
    with ``input_ids``. ``max_length`` truncates from the right.
    """
    rows = []
    for conversation in conversations:
        ids, mask = encode_chat(tokenizer, conversation)
        if max_length is not None:
            ids, mask = ids[:max_length], mask[:max_length]
        rows.append((ids, mask))
    return pad_right([ids for ids, _ in rows], [mask for _, mask in rows], tokenizer.pad_token_id)


_GENERATION_BLOCK = re.compile(r"{%-?\s*generation\s*-?%}")


def has_generation_marks(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template wraps assistant turns in ``{% generation %}`` (the tag, not the
    word: ``add_generation_prompt`` names it too)."""
    return _GENERATION_BLOCK.search(tokenizer.chat_template or "") is not None


def encode_chat(tokenizer: PreTrainedTokenizerBase, conversation: str | Sequence[Message]) -> tuple[list[int], list[int]]:
    """(token ids, assistant mask) of one whole conversation: 1 on every token an assistant
    turn adds (its content and its end-of-turn tokens), 0 elsewhere.

    Templates that mark assistant turns with ``{% generation %}`` (ours) give the mask directly.
    Most instruction models' templates (Qwen2.5's, Llama 3's) do not; for those a turn's tokens
    are what rendering it adds after the generation prompt of the turns before it, which is
    also exactly the prompt :func:`encode_prompt` gives the policy when it acts.
    """
    messages = as_messages(conversation)
    if has_generation_marks(tokenizer):
        encoded: Any = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(encoded["input_ids"]), list(encoded["assistant_masks"])

    def render(turns: list[dict[str, str]], generation_prompt: bool) -> list[int]:
        text = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    ids = render(messages, False)
    mask = [0] * len(ids)
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = render(messages[:turn], True)
        through = ids if turn + 1 == len(messages) else render(messages[: turn + 1], False)
        if ids[: len(through)] != through or through[: len(prompt)] != prompt:
            raise ValueError(
                "this chat template renders a turn differently once later turns follow (some drop "
                "<think> from past turns), so the assistant tokens cannot be located; give the "
                "tokenizer a chat_template that wraps assistant turns in {% generation %}")
        mask[len(prompt) : len(through)] = [1] * (len(through) - len(prompt))
    return ids, mask


def pad_right(
    sequences: Sequence[Sequence[int]], loss_masks: Sequence[Sequence[int]], pad_id: int
) -> dict[str, torch.Tensor]:
    """Right-pad token sequences (and their loss masks) into a batch."""
    if len(sequences) != len(loss_masks):
        raise ValueError(f"{len(sequences)} sequences but {len(loss_masks)} loss masks")
    width = max((len(s) for s in sequences), default=0)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    loss_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (ids, mask) in enumerate(zip(sequences, loss_masks, strict=True)):
        if len(ids) != len(mask):
            raise ValueError(f"row {row}: {len(ids)} ids but {len(mask)} loss-mask entries")
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
        loss_mask[row, : len(ids)] = torch.tensor(mask, dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "loss_mask": loss_mask}
