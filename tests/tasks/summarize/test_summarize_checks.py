"""Output checks on hand-made answers."""

from __future__ import annotations

import pytest

from tasks.summarize.backends import Generation
from tasks.summarize.checks import OutputChecks, check_output

PREFS = OutputChecks(require_phrase="prefer")


@pytest.mark.parametrize(
    ("text", "finished", "reason"),
    [
        ("The user appears to have a preference for dark comedies.", True, None),
        ("", True, "empty"),
        ("   ok  ", True, "empty"),
        ("The user appears to have a preference for dark comedies and", False, "runaway: hit max_new_tokens"),
        ("the user likes the user likes the user likes the user likes the user likes", True, "runaway: repetitive"),
        ("They like comedies a lot, mostly old ones.", True, "off-format: no 'prefer'"),
        ("The user appears to have a preference for x.<|im_start|>user", True, "off-format: chat markup in the answer"),
    ],
)
def test_check_output(text: str, finished: bool, reason: str | None) -> None:
    assert check_output(Generation(text, 12, finished), PREFS) == reason


def test_unfinished_answers_pass_when_allowed() -> None:
    checks = OutputChecks(allow_unfinished=True)
    assert check_output(Generation("a long answer that was cut", 8, False), checks) is None


def test_cut_answers_keep_their_complete_sentences() -> None:
    from tasks.summarize.checks import trim_to_sentences

    cut = trim_to_sentences(Generation("The user appears to have a preference for comedies. They also like", 9, False))
    assert cut == Generation("The user appears to have a preference for comedies.", 9, True)
    assert check_output(cut, PREFS) is None
    no_end = Generation("The user appears to have a preference for comedies and", 9, False)
    assert trim_to_sentences(no_end) == no_end
