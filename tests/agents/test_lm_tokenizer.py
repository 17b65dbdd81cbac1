"""The embedded character tokenizer: lossless text, unknown characters, chat masks, save/reload."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from agents.policies.lm.model import build_default_model
from agents.policies.lm.tokenizer import (
    CHARACTERS,
    CHAT_TEMPLATE,
    FORMAT_TAGS,
    SPECIAL_TOKENS,
    build_char_tokenizer,
    encode_chat,
    encode_chats,
)

TOKENIZER = build_char_tokenizer()
# Pieces rather than single characters so newlines, double spaces and ✓ → turn up often.
KNOWN_TEXT = st.lists(st.sampled_from((*CHARACTERS, "\n", "  ", "\n\n", "✓", "→")), max_size=60).map("".join)
RULES_SNIPPET = "Rules:\n  ✓ = right spot → keep it…\n\n“crane” isn’t <think>x</think><guess>crane</guess>\t!"




def expected_length(text: str) -> int:
    """One token per character, except each format tag (``<guess>`` ...) is one token."""
    return len(text) - sum(text.count(tag) * (len(tag) - 1) for tag in FORMAT_TAGS)


def test_is_a_real_fast_tokenizer_with_one_token_per_character() -> None:
    assert isinstance(TOKENIZER, PreTrainedTokenizerFast)
    ids = TOKENIZER(RULES_SNIPPET, add_special_tokens=False)["input_ids"]
    assert len(ids) == expected_length(RULES_SNIPPET) < len(RULES_SNIPPET)
    assert TOKENIZER.unk_token_id not in ids


@settings(max_examples=60, deadline=None)
@given(KNOWN_TEXT)
def test_known_text_round_trips_exactly(text: str) -> None:
    ids = TOKENIZER(text, add_special_tokens=False)["input_ids"]
    assert TOKENIZER.decode(ids) == text
    assert len(ids) == expected_length(text)
    assert TOKENIZER.unk_token_id not in ids


@settings(max_examples=30, deadline=None)
@given(st.text(max_size=40).filter(lambda t: not any(s in t for s in SPECIAL_TOKENS + FORMAT_TAGS)))
def test_any_text_encodes_without_crashing_and_unknowns_become_unk(text: str) -> None:
    ids = TOKENIZER(text, add_special_tokens=False)["input_ids"]
    known = set(CHARACTERS)
    expected = [TOKENIZER.convert_tokens_to_ids(c) if c in known else TOKENIZER.unk_token_id for c in text]
    assert ids == expected


def test_unknown_character_maps_to_unk() -> None:
    ids = TOKENIZER("aé\u4e2db", add_special_tokens=False)["input_ids"]
    assert ids[1] == ids[2] == TOKENIZER.unk_token_id
    assert TOKENIZER.decode(ids, skip_special_tokens=True) == "ab"


def test_special_token_strings_in_text_are_read_as_special_tokens() -> None:
    # As with every Hugging Face tokenizer; env prompts and decoded completions never contain them.
    ids = TOKENIZER("a<|end|>b", add_special_tokens=False)["input_ids"]
    assert TOKENIZER.convert_ids_to_tokens(ids) == ["a", "<|end|>", "b"]


def test_save_and_autotokenizer_reload_beside_the_default_model(tmp_path) -> None:
    # Saved next to the model's config.json, as a --model directory would be: AutoTokenizer
    # must not swap in a byte-level tokenizer (which drops spaces and newlines).
    model = build_default_model(TOKENIZER, seed=0, hidden_size=16, intermediate_size=32,
                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    assert model.config.model_type == "llama"
    model.save_pretrained(tmp_path)
    TOKENIZER.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    for text in (RULES_SNIPPET, "soare 01020\ncrane 20001\n", "a  b\n\n c"):
        ids = reloaded(text, add_special_tokens=False)["input_ids"]
        assert ids == TOKENIZER(text, add_special_tokens=False)["input_ids"]
        assert reloaded.decode(ids) == text
    conversation = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    assert reloaded.apply_chat_template(conversation, tokenize=False) == TOKENIZER.apply_chat_template(
        conversation, tokenize=False
    )
    assert reloaded.eos_token == TOKENIZER.eos_token == "<|end|>"


def test_chat_template_marks_exactly_the_assistant_tokens_of_every_turn() -> None:
    conversation = [
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "cd"},
        {"role": "user", "content": "e"},
        {"role": "assistant", "content": "f"},
    ]
    encoded = TOKENIZER.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    tokens = TOKENIZER.convert_ids_to_tokens(encoded["input_ids"])
    assert tokens == ["<bos>", "<|user|>", "a", "b", "<|end|>", "<|assistant|>", "c", "d", "<|end|>",
                      "<|user|>", "e", "<|end|>", "<|assistant|>", "f", "<|end|>"]
    # Assistant content and its end-of-turn token are trained on; role markers are not.
    assert [i for i, m in enumerate(encoded["assistant_masks"]) if m] == [6, 7, 8, 13, 14]


def without_generation_marks(template: str) -> PreTrainedTokenizerFast:
    tokenizer = build_char_tokenizer()
    tokenizer.chat_template = template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    return tokenizer


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(KNOWN_TEXT, KNOWN_TEXT), min_size=1, max_size=4), st.booleans())
def test_templates_without_generation_marks_get_the_same_assistant_mask(turns, system) -> None:
    # Instruction models' templates (Qwen2.5, Llama 3) have no {% generation %}: the mask then
    # comes from rendering prefixes, and must equal what the marks would have given.
    conversation = [{"role": "system", "content": "be brief"}] if system else []
    for user, assistant in turns:
        conversation += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    assert encode_chat(without_generation_marks(CHAT_TEMPLATE), conversation) == encode_chat(TOKENIZER, conversation)


def test_a_template_that_rewrites_past_turns_is_a_clear_error() -> None:
    # Like templates that drop <think> from earlier assistant turns: a turn's tokens change
    # once another turn follows, so they cannot be located.
    rewriting = CHAT_TEMPLATE.replace("{{ message['content'] }}{{ eos_token }}{% endgeneration %}",
                                      "{{ message['content'] if loop.last else '' }}{{ eos_token }}{% endgeneration %}")
    conversation = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]
    with pytest.raises(ValueError, match="generation"):
        encode_chat(without_generation_marks(rewriting), conversation)


def test_generation_prompt_ends_with_the_assistant_marker() -> None:
    text = TOKENIZER.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<bos><|user|>hi<|end|><|assistant|>"


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(Exception, match="unknown chat role"):
        TOKENIZER.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_encode_chats_pads_right_and_aligns_the_loss_mask() -> None:
    batch = encode_chats(TOKENIZER, [
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "bc"}],
        [{"role": "user", "content": "long prompt"}, {"role": "assistant", "content": "d"}],
    ])
    assert batch["input_ids"].shape == batch["loss_mask"].shape == batch["attention_mask"].shape
    first_len = int(batch["attention_mask"][0].sum())
    assert first_len == 1 + 1 + 1 + 1 + 1 + 2 + 1  # bos user a end assistant b c end
    assert (batch["input_ids"][0, first_len:] == TOKENIZER.pad_token_id).all()
    masked = batch["input_ids"][0][batch["loss_mask"][0].bool()].tolist()
    assert TOKENIZER.convert_ids_to_tokens(masked) == ["b", "c", "<|end|>"]
    assert batch["loss_mask"][1].sum() == 2
