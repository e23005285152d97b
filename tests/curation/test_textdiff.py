"""Word diffs of edited responses: exact parts on hand-made texts."""

from __future__ import annotations

from curation.review.textdiff import DiffPart, tokens, word_diff, word_diff_text

PARAGRAPH = ("Thanks for writing in. Your parcel left our warehouse on Monday and should arrive within three "
             "working days. You can follow it with the tracking link in your email.")


def test_tokens_join_back_to_the_text() -> None:
    text = "Hello,  world!\n\tIt's 3.5 km."
    assert "".join(tokens(text)) == text
    assert tokens("a, b") == ["a", ",", " ", "b"]


def test_one_changed_word_in_a_paragraph_is_that_word() -> None:
    edited = PARAGRAPH.replace("three", "five")
    assert word_diff_text(PARAGRAPH, edited) == PARAGRAPH.replace("three", "[-three-]{+five+}")
    parts = word_diff(PARAGRAPH, edited)
    assert [p for p in parts if p.op != "equal"] == [DiffPart("delete", "three"), DiffPart("insert", "five")]


def test_insertions_deletions_and_no_change() -> None:
    assert word_diff_text("reply 1", "reply 1, with thanks") == "reply 1{+, with thanks+}"
    assert word_diff_text("please wait a day", "please wait") == "please wait[- a day-]"
    assert word_diff_text("same text", "same text") == ""
    assert word_diff_text("", "") == "" and word_diff("", "") == []
    assert word_diff_text("", "new") == "{+new+}"


def test_markup_stays_literal_text() -> None:
    assert word_diff_text("see <b>x</b>", "see <img src=x>") == "see <[-b-]{+img src=x+}>[-x</b>-]"


def test_a_space_between_two_changes_joins_them_and_both_sides_rebuild() -> None:
    assert word_diff_text("reply 1", "Longer and kinder.") == "[-reply 1-]{+Longer and kinder.+}"
    for original, edited in (("reply 1", "Longer and kinder."), (PARAGRAPH, PARAGRAPH.replace("Monday", "Tue")),
                             ("a b c d", "x b y d z"), ("one two", "")):
        parts = word_diff(original, edited)
        assert "".join(p.text for p in parts if p.op != "insert") == original
        assert "".join(p.text for p in parts if p.op != "delete") == edited
