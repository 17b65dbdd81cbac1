"""Demonstration sources: JSONL conversations, HH-RLHF parsing, Wordle solver games, the task split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.core.demonstrations import DataError, hh_conversations, parse_hh, read_conversations_jsonl
from agents.core.tasks import split_tasks
from envs.wordle import feedback, parse_guess, parse_history
from envs.wordle.demos import (
    wordle_practice_conversations,
    wordle_solver_conversations,
    wordle_spelling_conversations,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_messages_and_prompt_completion(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "d.jsonl", [
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
        "",
        json.dumps({"prompt": "2+2?", "completion": "4"}),
    ])
    assert read_conversations_jsonl(path) == [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "d.jsonl:2: not valid JSON"),
        (json.dumps({"messages": [{"role": "user", "content": "only a question"}]}), "d.jsonl:2: the conversation has no assistant turn"),
        (json.dumps({"messages": [{"role": "robot", "content": "x"}]}), "d.jsonl:2: message 0 has role 'robot'"),
        (json.dumps({"text": "x"}), "d.jsonl:2: expected 'messages' or 'prompt'+'completion'"),
        (json.dumps([1, 2]), "d.jsonl:2: expected a JSON object"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"prompt": "a", "completion": "b"})
    path = write_lines(tmp_path / "d.jsonl", [good, line])
    with pytest.raises(DataError) as err:
        read_conversations_jsonl(path)
    assert message in str(err.value)


def test_empty_jsonl_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_conversations_jsonl(path)


def test_parse_hh_multi_turn() -> None:
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant: Fine, thanks."
    assert parse_hh(text) == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Fine, thanks."},
    ]
    with pytest.raises(DataError):
        parse_hh("no speakers here")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1, max_size=30)
                .map(str.strip).filter(bool), min_size=1, max_size=6))
def test_parse_hh_round_trips_rendered_turns(turns: list[str]) -> None:
    speakers = ["Human", "Assistant"]
    text = "".join(f"\n\n{speakers[i % 2]}: {t}" for i, t in enumerate(turns))
    parsed = parse_hh(text)
    assert [m["content"] for m in parsed] == turns
    assert [m["role"] for m in parsed] == [("user", "assistant")[i % 2] for i in range(len(turns))]


@pytest.mark.skipif(not (SHARED / "hh").is_dir(), reason=f"HH sample not found at {SHARED / 'hh'}")
def test_hh_sample_parses_with_assistant_turns() -> None:
    conversations = hh_conversations(SHARED / "hh" / "harmless-base-test-500.jsonl")
    assert len(conversations) >= 450
    assert all(any(m["role"] == "assistant" for m in c) for c in conversations)
    assert any(sum(m["role"] == "assistant" for m in c) >= 2 for c in conversations)


def test_split_is_deterministic_disjoint_and_complete() -> None:
    tasks = [{"answer": f"w{i:04d}"} for i in range(100)]
    train, held = split_tasks(tasks, 0.8, seed=3)
    assert (train, held) == split_tasks(tasks, 0.8, seed=3)
    assert len(train) == 80 and len(held) == 20
    words = [t["answer"] for t in train], [t["answer"] for t in held]
    assert set(words[0]).isdisjoint(words[1]) and set(words[0]) | set(words[1]) == {t["answer"] for t in tasks}
    assert words[0] == sorted(words[0])  # each half in the tasks' natural order
    assert split_tasks(tasks, 0.8, seed=4) != (train, held)
    indices = [t["index"] for t in split_tasks([{"index": i} for i in range(30)], 0.5, seed=0)[1]]
    assert indices == sorted(indices)  # numbers sort as numbers, not as text


def test_solver_demonstrations_replay_the_real_game() -> None:
    answers = ["crane", "slate", "eagle", "tried", "abbey", "geese", "lolly", "hello", "trace", "allee"]
    conversations = wordle_solver_conversations({"answers": answers, "prompt_style": "compact"}, answers[:4])
    assert conversations
    games = 0
    for conversation in conversations:
        user, assistant = conversation
        history = parse_history(user["content"])
        guess = parse_guess(assistant["content"]).word
        assert guess is not None and guess in answers
        # Every history line is real feedback against one consistent answer.
        possible = [a for a in answers if all(feedback(g, a) == m for g, m in history)]
        assert possible, "the prompt's feedback contradicts every answer"
        games += not history
    assert games == 4  # one opening turn per game


PRACTICE_ANSWERS = ["crane", "slate", "eagle", "tried", "abbey", "geese"]
PRACTICE_EXTRA = ["lolly", "hello", "trace", "allee", "mound", "pinky", "vivid", "gawky", "fjord"]


def _games(conversations: list) -> list[list[tuple[str, str]]]:
    """Conversations (one per turn) regrouped into games: a game restarts at an empty board."""
    games: list[list[tuple[str, str]]] = []
    for user, assistant in conversations:
        if not parse_history(user["content"]):
            games.append([])
        games[-1].append((user["content"], parse_guess(assistant["content"]).word))
    return games


def test_practice_secrets_are_never_answers_and_games_open_like_the_answer_games() -> None:
    kwargs = {"answers": PRACTICE_ANSWERS, "allowed": PRACTICE_EXTRA, "prompt_style": "compact"}
    opener = wordle_solver_conversations(kwargs, PRACTICE_ANSWERS[:1], think="none")[0][1]["content"]
    conversations = wordle_practice_conversations(kwargs, count=len(PRACTICE_EXTRA), think="none")
    games = _games(conversations)
    assert len(games) == len(PRACTICE_EXTRA)  # every non-answer word is a secret once
    won = {game[-1][1] for game in games}
    assert won == set(PRACTICE_EXTRA) and won.isdisjoint(PRACTICE_ANSWERS)
    assert all(game[0][1] == parse_guess(opener).word for game in games)
    for game in games:  # every board is true feedback against that game's secret
        secret = game[-1][1]
        for prompt, _ in game:
            assert all(feedback(g, secret) == m for g, m in parse_history(prompt))


def test_practice_draw_is_seeded_and_skips_boards_the_answer_games_own() -> None:
    kwargs = {"answers": PRACTICE_ANSWERS, "allowed": PRACTICE_EXTRA, "prompt_style": "compact"}
    first = wordle_practice_conversations(kwargs, count=4, seed=1, think="none")
    assert first == wordle_practice_conversations(kwargs, count=4, seed=1, think="none")
    assert len(_games(first)) == 4
    assert {g[-1][1] for g in _games(first)} != {g[-1][1] for g in _games(
        wordle_practice_conversations(kwargs, count=4, seed=2, think="none"))}
    owned = {c[0]["content"] for c in first[:2]}
    kept = wordle_practice_conversations(kwargs, count=4, seed=1, think="none", skip_prompts=owned)
    assert kept == [c for c in first if c[0]["content"] not in owned] and len(kept) < len(first)


def test_practice_needs_words_beyond_the_answers() -> None:
    with pytest.raises(ValueError, match="not answers"):
        # (answers alone would allow the package's words too: here no allowed word is beyond them)
        wordle_practice_conversations({"answers": PRACTICE_ANSWERS, "allowed": PRACTICE_ANSWERS}, count=3)
    with pytest.raises(ValueError, match="count"):
        wordle_practice_conversations({"answers": PRACTICE_ANSWERS, "allowed": PRACTICE_EXTRA}, count=0)


def test_spelling_writes_every_allowed_word_once_without_a_board() -> None:
    kwargs = {"answers": PRACTICE_ANSWERS, "allowed": PRACTICE_EXTRA}
    conversations = wordle_spelling_conversations(kwargs)
    words = [parse_guess(assistant["content"]).word for _, assistant in conversations]
    assert sorted(words) == sorted(set(PRACTICE_ANSWERS) | set(PRACTICE_EXTRA))  # answers unmarked among them
    prompts = {user["content"] for user, _ in conversations}
    assert len(prompts) == 1 and parse_history(prompts.pop()) == []  # one fixed request: no game state
