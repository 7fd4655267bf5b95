"""History chunks: chunking, the seeker's words per chunk, labels, and no turn at or after the cut-off."""

from __future__ import annotations

from tasks.summarize.history import history_chunks, recommendation_points


def _turn(i: int, role: str, text: str, ids: tuple[str, ...] = (), liked: list[bool | None] | None = None) -> dict:
    return {"turn_idx": i, "role": role, "text": text, "mentioned_item_ids": list(ids), "liked": liked, "seen": None}


TURNS = [
    _turn(0, "seeker", "hi i like @a and @b", ("a", "b"), [True, None]),
    _turn(1, "recommender", "have you seen @c", ("c",)),
    _turn(2, "seeker", "no but @d is great", ("d",), [True]),
    _turn(3, "recommender", "try @e or @f or @g", ("e", "f", "g")),
    _turn(4, "seeker", "thanks, @e sounds fun", ("e",)),
    _turn(5, "recommender", "then @h", ("h",)),
    _turn(6, "seeker", "FUTURE words @z", ("z",)),
]
TITLES = {k: f"Movie {k.upper()}" for k in "abcdefghz"}


def test_recommendation_points_are_recommender_turns_with_mentions() -> None:
    assert recommendation_points(TURNS) == [1, 3, 5]


def test_chunks_of_chunk_size_items_in_first_mention_order() -> None:
    chunks = history_chunks(TURNS, 5, chunk_size=3, titles=TITLES)
    assert [[i.item_id for i in c.items] for c in chunks] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert chunks[0].items[0].liked is True and chunks[0].items[1].liked is None
    assert chunks[0].items[0].describe() == "- Movie A (liked)"
    # the seeker's words go with the chunk whose items they came with; mentions read as titles
    assert chunks[0].words == ("hi i like Movie A and Movie B",)
    assert chunks[1].words == ("no but Movie D is great",)
    assert chunks[2].words == ("thanks, Movie E sounds fun",)


def test_no_turn_at_or_after_the_cut_off_is_read() -> None:
    for upto in recommendation_points(TURNS):
        chunks = history_chunks(TURNS, upto, chunk_size=2, titles=TITLES)
        seen_items = {i.item_id for c in chunks for i in c.items}
        later = {x for t in TURNS if t["turn_idx"] >= upto for x in t["mentioned_item_ids"]}
        earlier = {x for t in TURNS if t["turn_idx"] < upto for x in t["mentioned_item_ids"]}
        assert seen_items == earlier and not (later - earlier) & seen_items
        assert all("FUTURE" not in w for c in chunks for w in c.words)


def test_nothing_before_the_first_turn_gives_no_chunks() -> None:
    assert history_chunks(TURNS, 0) == []


def test_without_labels_every_item_is_unlabelled_and_the_words_stay() -> None:
    labelled = history_chunks(TURNS, 5, chunk_size=3, titles=TITLES)
    unlabelled = history_chunks(TURNS, 5, chunk_size=3, titles=TITLES, labels=False)
    assert all(i.liked is None and i.seen is None for c in unlabelled for i in c.items)
    assert unlabelled[0].items[0].describe() == "- Movie A"
    assert [c.words for c in unlabelled] == [c.words for c in labelled]
    assert [c.inputs() for c in unlabelled] != [c.inputs() for c in labelled]  # a different prompt hash
