"""Synthetic recommendation dialogues from MovieLens rating sequences, in ReDial's raw JSONL format.

Where the real ReDial dialogues are absent, the demo still needs dialogues that go through the same reader.
Each one replays a window of one MovieLens user's ratings, in time order: the seeker tells how they felt
about a few movies they rated, the recommender suggests the next movie that user went on to rate highly,
and the seeker answers. Movies are mentioned as ``@<MovieLens id>`` and named ``"Title (Year)"`` exactly
as in the demo catalog, so mentions link to catalog items by title and year.

Everything random comes from one ``random.Random(seed)`` and only its ``random()`` method, whose sequence
Python keeps stable across versions: the same seed gives the same file.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import polars as pl

from tasks.demo.catalog import load_movielens_items, movielens_file

_T = TypeVar("_T")

_CONVERSATION_ID_BASE = 900_000
_MESSAGE_ID_BASE = 90_000_000
_RECOMMENDER_WORKER_BASE = 100_000  # seekers are MovieLens user ids (1..943); recommenders sit apart
_N_RECOMMENDERS = 40
_HIGH_RATING = 4  # rating >= 4: liked
_LOW_RATING = 2  # rating <= 2: disliked; in between: ReDial's "did not say" (2)

_GREETINGS = (
    "Hi! I'm looking for a movie to watch tonight.",
    "Hello, could you recommend me a movie?",
    "Hey there, I need a good movie suggestion.",
    "Hi, I'm in the mood for a movie. Any ideas?",
)
_OPENERS = (
    "Sure! What have you watched lately?",
    "Happy to help. Tell me about some movies you've seen.",
    "Of course. What kind of movies do you like?",
)
_LIKED = ("I really liked {m}.", "I loved {m}.", "{m} was great.", "I enjoyed {m} a lot.")
_DISLIKED = ("I didn't like {m} at all.", "{m} was a disappointment.", "I couldn't get into {m}.")
_NEUTRAL = ("{m} was okay.", "I thought {m} was fine, nothing special.", "I watched {m}, it was alright.")
_SUGGESTIONS = (
    "Then you might like {m}.",
    "Have you seen {m}? I think you'd enjoy it.",
    "I'd recommend {m}.",
    "How about {m}?",
)
_ANSWERS = (
    "I haven't seen it yet, I'll check it out. Thanks!",
    "That sounds great, I'll watch {m}.",
    "Oh, I've heard of that one. I'll give it a try!",
)
_GOODBYES = ("Enjoy the movie!", "You're welcome, have a nice evening!", "Glad I could help. Bye!")


class _Rating(NamedTuple):
    item: int
    rating: int


class _Window(NamedTuple):
    user: int
    history: tuple[_Rating, ...]  # what the seeker talks about
    target: _Rating  # the next movie the user rated highly


def _index_below(rng: random.Random, bound: int) -> int:
    """A uniform integer in ``[0, bound)`` made with ``random()`` alone (stable across Python versions)."""
    return min(int(rng.random() * bound), bound - 1)


def _pick(rng: random.Random, options: Sequence[_T]) -> _T:
    """A uniform choice among ``options``."""
    return options[_index_below(rng, len(options))]


def _shuffled(rng: random.Random, values: Sequence[_T]) -> list[_T]:
    """A Fisher-Yates shuffle of ``values``."""
    result = list(values)
    for i in range(len(result) - 1, 0, -1):
        j = _index_below(rng, i + 1)
        result[i], result[j] = result[j], result[i]
    return result


def _liked_label(rating: int) -> int:
    """ReDial's ``liked``: 1 liked, 0 disliked, 2 did not say."""
    if rating >= _HIGH_RATING:
        return 1
    return 0 if rating <= _LOW_RATING else 2


def _movie_names() -> dict[int, str]:
    """MovieLens id -> ``"Title (Year)"`` for items with a known year (the others cannot be linked)."""
    items = load_movielens_items().filter(pl.col("year").is_not_null())
    return {
        int(item_id.removeprefix("ml:")): f"{title} ({year})"
        for item_id, title, year in items.select("item_id", "title", "year").iter_rows()
    }


def _rating_sequences(names: Mapping[int, str]) -> dict[int, list[_Rating]]:
    """Each user's ratings of nameable movies, in time order (ties broken by item id)."""
    ratings = pl.read_csv(
        movielens_file("inter"),
        separator="\t",
        quote_char=None,
        new_columns=["user", "item", "rating", "timestamp"],
        schema_overrides={"user": pl.Int64, "item": pl.Int64, "rating": pl.Float64, "timestamp": pl.Float64},
    )
    ratings = ratings.filter(pl.col("item").is_in(list(names))).sort("user", "timestamp", "item")
    sequences: dict[int, list[_Rating]] = {}
    for user, item, rating, _ in ratings.iter_rows():
        sequences.setdefault(user, []).append(_Rating(item=item, rating=round(rating)))
    return sequences


def _windows(user: int, ratings: Sequence[_Rating], size: int) -> list[_Window]:
    """Every window of ``size`` consecutive ratings that is followed, later on, by a high rating."""
    windows: list[_Window] = []
    next_high: _Rating | None = None
    for end in range(len(ratings) - 1, size - 1, -1):  # walk back, tracking the next high rating
        if ratings[end].rating >= _HIGH_RATING:
            next_high = ratings[end]
        if next_high is not None:
            windows.append(_Window(user, tuple(ratings[end - size : end]), next_high))
    return windows[::-1]


def _choose_windows(
    sequences: Mapping[int, Sequence[_Rating]], *, count: int, size: int, rng: random.Random
) -> list[_Window]:
    """``count`` distinct windows, spread over as many users as possible: users in a seeded order,
    round-robin, each giving one of its windows at random per round."""
    pools = {user: _windows(user, ratings, size) for user, ratings in sorted(sequences.items())}
    pools = {user: pool for user, pool in pools.items() if pool}
    if sum(len(pool) for pool in pools.values()) < count:
        raise ValueError(f"MovieLens has fewer than {count} windows of {size} ratings followed by a high one")
    order = _shuffled(rng, sorted(pools))
    chosen: list[_Window] = []
    while len(chosen) < count:
        for user in order:
            pool = pools[user]
            if pool and len(chosen) < count:
                chosen.append(pool.pop(_index_below(rng, len(pool))))
    return chosen


def _utterances(window: _Window, rng: random.Random) -> list[tuple[bool, str]]:
    """The dialogue as ``(spoken by the seeker, text)`` pairs."""
    target = f"@{window.target.item}"
    feelings = {1: _LIKED, 0: _DISLIKED, 2: _NEUTRAL}
    turns = [(True, _pick(rng, _GREETINGS)), (False, _pick(rng, _OPENERS))]
    turns += [
        (True, _pick(rng, feelings[_liked_label(seen.rating)]).format(m=f"@{seen.item}")) for seen in window.history
    ]
    turns += [
        (False, _pick(rng, _SUGGESTIONS).format(m=target)),
        (True, _pick(rng, _ANSWERS).format(m=target)),
        (False, _pick(rng, _GOODBYES)),
    ]
    return turns


def _questions(window: _Window) -> dict[str, dict[str, int]]:
    """ReDial's per-movie answers: the seeker has seen what they talk about, not the suggestion."""
    answers = {
        str(seen.item): {"suggested": 0, "seen": 1, "liked": _liked_label(seen.rating)} for seen in window.history
    }
    answers[str(window.target.item)] = {"suggested": 1, "seen": 0, "liked": _liked_label(window.target.rating)}
    return answers


def _conversation(
    number: int, window: _Window, names: Mapping[int, str], rng: random.Random, first_message_id: int
) -> dict[str, Any]:
    """One ReDial raw-format conversation object."""
    seeker, recommender = window.user, _RECOMMENDER_WORKER_BASE + _index_below(rng, _N_RECOMMENDERS)
    messages, offset = [], 0
    for index, (by_seeker, text) in enumerate(_utterances(window, rng)):
        messages.append(
            {
                "timeOffset": offset,
                "text": text,
                "senderWorkerId": seeker if by_seeker else recommender,
                "messageId": first_message_id + index,
            }
        )
        offset += 5 + _index_below(rng, 60)  # seconds between messages
    questions = _questions(window)
    return {
        "conversationId": _CONVERSATION_ID_BASE + number,
        "messages": messages,
        "movieMentions": {movie: names[int(movie)] for movie in questions},
        "initiatorWorkerId": seeker,
        "respondentWorkerId": recommender,
        "initiatorQuestions": questions,
        "respondentQuestions": questions,
        "synthetic": True,
    }


def synthesize_dialogues(*, out_path: Path, n_dialogues: int = 500, seed: int = 0, items_per_dialogue: int = 4) -> Path:
    """Write ReDial-format dialogues derived from MovieLens-100K rating sequences.

    Args:
        out_path: The JSONL file to write (replaced atomically); its folder is created when missing.
        n_dialogues: How many dialogues; ids are ``900000 + n``.
        seed: Seeds the choice of users and windows and the wording; same seed, same file.
        items_per_dialogue: How many rated movies the seeker talks about before the suggestion.

    Returns:
        ``out_path``.

    Raises:
        ValueError: For a non-positive count, or more dialogues than MovieLens has windows for.

    Example:
        >>> path = synthesize_dialogues(out_path=Path("dialogues.jsonl"), n_dialogues=10, seed=1)
        >>> json.loads(path.read_text().splitlines()[0])["synthetic"]
        True
    """
    if n_dialogues < 1 or items_per_dialogue < 1:
        raise ValueError("n_dialogues and items_per_dialogue must be positive")
    rng = random.Random(seed)
    names = _movie_names()
    windows = _choose_windows(_rating_sequences(names), count=n_dialogues, size=items_per_dialogue, rng=rng)
    lines, message_id = [], _MESSAGE_ID_BASE
    for number, window in enumerate(windows):
        conversation = _conversation(number, window, names, rng, message_id)
        message_id += len(conversation["messages"])
        lines.append(json.dumps(conversation, ensure_ascii=False))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, out_path)
    return out_path
