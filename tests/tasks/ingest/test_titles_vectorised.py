"""The vectorised title normaliser gives exactly ``normalise_title``'s keys (it feeds linking and enrichment)."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.ingest.titles import normalise_title, normalised_titles

_PIECES = ["The", "the", "THE", "a", "An", "les", "Die", ", ", ",", "(", ")", "&", " ", "  ", "-", "'", ":", "_"]
_PIECES += ["Usual Suspects", "Seven", "Se7en", "1999", "(1995)", "Amélie", "Ænima", "東京", "\t", "\x1c", "ﬁ"]
_ascii = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_titles = st.one_of(_ascii, st.lists(st.sampled_from(_PIECES), max_size=8).map("".join), st.text(max_size=30))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.none(), _titles), max_size=30))
def test_vectorised_keys_equal_the_python_normaliser(titles: list[str | None]) -> None:
    got = normalised_titles(pl.Series(titles, dtype=pl.String)).to_list()
    assert got == [None if t is None else normalise_title(t) for t in titles]


def test_known_titles() -> None:
    titles = ["Usual Suspects, The (1995)", "  Seven (Se7en) ", "Tom & Jerry", "Amélie, Le", "ROCKY, THE", None]
    assert normalised_titles(pl.Series(titles)).to_list() == [
        "the usual suspects",
        "seven",
        "tom and jerry",
        "le amelie",
        "the rocky",
        None,
    ]
