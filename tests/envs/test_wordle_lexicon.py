"""Wordle word lists: user files and lists, errors that name the offending line, the default lexicon."""

from __future__ import annotations

import pytest

from envs.wordle.env import WordleEnv
from envs.wordle.lexicon import Lexicon, LexiconError, load_lexicon


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_file_with_comments_blanks_and_case(tmp_path):
    path = write(tmp_path, "answers.txt", "# my list\nCrane\n\n  slate  \r\ncrane\n")
    lex = load_lexicon(path)
    assert lex.answers == ("crane", "slate")  # lowercased, stripped, deduplicated, order kept


def test_answers_alone_keep_the_package_guesses_and_are_allowed_themselves():
    lex = load_lexicon(["qwert", "crane"])  # "qwert" is no dictionary word, but it is an answer
    package = load_lexicon()
    assert lex.answers == ("qwert", "crane")
    assert set(lex.allowed) == set(package.allowed) | {"qwert"} and list(lex.allowed) == sorted(lex.allowed)


def test_allowed_is_sorted_union_with_answers(tmp_path):
    answers = write(tmp_path, "a.txt", "slate\ncrane\n")
    allowed = write(tmp_path, "b.txt", "zesty\nabbey\n")
    lex = load_lexicon(answers, allowed)
    assert lex.answers == ("slate", "crane")
    assert lex.allowed == ("abbey", "crane", "slate", "zesty")
    assert lex.allowed_index["zesty"] == 3 and lex.answer_index["crane"] == 1


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("crane\nslate\ncranes\n", 3, "6 letters"),
    ("crane\n\n# comment\ncran\n", 4, "4 letters"),
    ("crane\ncr4ne\n", 2, "only the letters"),
    ("cr-ne\n", 1, "only the letters"),
    ("crane\ncrâne\n", 2, "only the letters"),
    ("crane\nsl ate\n", 2, "letters"),
])
def test_bad_word_names_the_line(tmp_path, text, line, fragment):
    path = write(tmp_path, "answers.txt", text)
    with pytest.raises(LexiconError) as err:
        load_lexicon(path)
    assert f"{path}:{line}:" in str(err.value)
    assert fragment in str(err.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  \n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, "answers.txt", text)
    with pytest.raises(LexiconError, match="empty"):
        load_lexicon(path)


def test_bad_allowed_file_names_its_line(tmp_path):
    answers = write(tmp_path, "answers.txt", "crane\n")
    allowed = write(tmp_path, "allowed.txt", "slate\nabc\n")
    with pytest.raises(LexiconError, match=f"{allowed}:2:"):
        load_lexicon(answers, allowed)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(LexiconError, match="does not exist"):
        load_lexicon(tmp_path / "nope.txt")
    path = tmp_path / "latin1.txt"
    path.write_bytes("crane\ncr\xe2ne\n".encode("latin-1"))
    with pytest.raises(LexiconError, match="UTF-8"):
        load_lexicon(path)


def test_lists_and_their_errors():
    assert load_lexicon(["CRANE", "slate"]).answers == ("crane", "slate")
    with pytest.raises(LexiconError, match=r"answers\[1\]"):
        load_lexicon(["crane", "abc"])
    with pytest.raises(LexiconError, match="empty"):
        load_lexicon([])
    with pytest.raises(LexiconError, match="path or a list"):
        load_lexicon(b"crane")
    with pytest.raises(LexiconError, match="without answers"):
        load_lexicon(None, ["crane"])
    with pytest.raises(LexiconError, match="empty"):
        Lexicon.build([])


def test_env_surfaces_lexicon_errors(tmp_path):
    path = write(tmp_path, "answers.txt", "crane\nslates\n")
    with pytest.raises(LexiconError, match=f"{path}:2:"):
        WordleEnv(answers=str(path))


def test_digest_depends_on_content():
    a = load_lexicon(["crane", "slate"])
    assert a.digest == load_lexicon(["crane", "slate"]).digest
    assert a.digest != load_lexicon(["slate", "crane"]).digest  # answer order is part of the game
    assert a.digest != load_lexicon(["crane", "slate"], ["zesty"]).digest


def test_official_lists(official_lexicon):
    assert len(official_lexicon.answers) == 2315
    assert len(official_lexicon.allowed) == 2315 + 10657  # the two files are disjoint


def test_default_lexicon_is_offline_and_well_formed():
    lex = load_lexicon()
    assert len(lex.answers) == 2315
    assert set(lex.answers) <= set(lex.allowed) and len(lex.allowed) > len(lex.answers)
    assert list(lex.allowed) == sorted(lex.allowed)
    assert all(len(w) == 5 and w.isascii() and w.isalpha() and w.islower() for w in lex.allowed)
    for common in ("about", "house", "water", "world"):
        assert common in lex.answer_index
