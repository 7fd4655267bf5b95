"""Generated inputs for the scale benchmark: item catalogs with realistic texts and ReDial-format dialogues.

Every item gets a distinct title (so dialogue mentions link to it by title and year) and a text of about 300
characters built from word lists: genres, a director, a cast and two plot-like sentences. Dialogues mention
a handful of catalog items each, in ReDial's raw JSONL format, as the real reader expects. Everything comes
from ``numpy.random.default_rng(seed)``: the same seed gives the same files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl

_ADJECTIVES = [
    "Crimson",
    "Silent",
    "Broken",
    "Golden",
    "Hidden",
    "Last",
    "Endless",
    "Frozen",
    "Burning",
    "Distant",
    "Midnight",
    "Wild",
    "Iron",
    "Hollow",
    "Electric",
    "Velvet",
    "Savage",
    "Quiet",
    "Lost",
    "Bright",
    "Dark",
    "Shattered",
    "Northern",
    "Secret",
    "Fallen",
]
_NOUNS = [
    "Harbor",
    "Kingdom",
    "River",
    "Promise",
    "Garden",
    "Empire",
    "Signal",
    "Horizon",
    "Frontier",
    "Mirror",
    "Station",
    "Summer",
    "Winter",
    "Storm",
    "Road",
    "Circus",
    "Orchard",
    "Lighthouse",
    "Parade",
    "Machine",
    "Tide",
    "Valley",
    "Witness",
    "Letter",
    "Ghost",
]
_GENRES = [
    "Drama",
    "Comedy",
    "Thriller",
    "Romance",
    "Action",
    "Horror",
    "Documentary",
    "Animation",
    "Crime",
    "Mystery",
    "Western",
    "Musical",
]
_FIRST = [
    "Anna",
    "Marco",
    "Li",
    "Priya",
    "Tom",
    "Sofia",
    "Kenji",
    "Amara",
    "Lucas",
    "Elena",
    "Omar",
    "Grace",
    "Ivan",
    "Nadia",
    "Pablo",
    "Hana",
    "Felix",
    "Zoe",
]
_LAST = [
    "Berg",
    "Rossi",
    "Chen",
    "Patel",
    "Walsh",
    "Moreau",
    "Sato",
    "Okafor",
    "Novak",
    "Silva",
    "Haddad",
    "Kim",
    "Petrov",
    "Duval",
    "Reyes",
    "Lund",
]
_SUBJECTS = [
    "a retired detective",
    "two estranged sisters",
    "a young pilot",
    "a small-town teacher",
    "an ambitious chef",
    "a war photographer",
    "a runaway heiress",
    "a struggling musician",
    "an aging boxer",
    "a rookie journalist",
    "a lonely inventor",
]
_VERBS = [
    "must confront",
    "is drawn into",
    "uncovers",
    "races against",
    "falls for",
    "tries to escape",
    "returns to",
    "fights to save",
    "slowly unravels",
    "stumbles upon",
]
_OBJECTS = [
    "a decades-old secret",
    "a dangerous conspiracy",
    "the family farm",
    "a forgotten love",
    "a city on the brink",
    "a stolen painting",
    "the ghosts of the past",
    "an impossible heist",
    "a bitter rivalry",
    "a mysterious stranger",
]
_ENDINGS = [
    "Nothing is what it seems.",
    "A story of loyalty, loss and second chances.",
    "Tensions rise as the clock runs out.",
    "What begins as a favour turns into an obsession.",
    "Old wounds reopen before a reckoning.",
    "Friendship is tested in ways no one expected.",
]


def _pick(rng: np.random.Generator, words: list[str] | tuple[str, ...], n: int) -> np.ndarray:
    return np.asarray(words, dtype=object)[rng.integers(0, len(words), n)]


def _name(rng: np.random.Generator, n: int) -> np.ndarray:
    return _pick(rng, _FIRST, n) + " " + _pick(rng, _LAST, n)


def item_frame(start: int, count: int, *, seed: int = 0, poster_base: str | None = None) -> pl.DataFrame:
    """Catalog rows ``item_id, title, year, text, poster_url`` for items ``start .. start+count-1``.

    ``poster_url`` is ``<poster_base>/<i>.jpg`` when a poster server is given, else null.
    """
    rng = np.random.default_rng([seed, start])
    index = np.arange(start, start + count)
    years = rng.integers(1930, 2026, count)
    titles = _pick(rng, _ADJECTIVES, count) + " " + _pick(rng, _NOUNS, count) + ": Chapter " + index.astype(str)
    genres = _pick(rng, _GENRES, count) + ", " + _pick(rng, _GENRES, count)
    cast = _name(rng, count) + ", " + _name(rng, count) + " and " + _name(rng, count)
    plot = _pick(rng, _SUBJECTS, count) + " " + _pick(rng, _VERBS, count) + " " + _pick(rng, _OBJECTS, count)
    second = _pick(rng, _SUBJECTS, count) + " " + _pick(rng, _VERBS, count) + " " + _pick(rng, _OBJECTS, count)
    texts = [
        f"{g} film ({y}) directed by {d}, starring {c}. In this story, {p}, while {s}. {e}"
        for g, y, d, c, p, s, e in zip(
            genres, years, _name(rng, count), cast, plot, second, _pick(rng, _ENDINGS, count), strict=True
        )
    ]
    posters = [f"{poster_base}/{i}.jpg" for i in index] if poster_base else [None] * count
    return pl.DataFrame(
        {
            "item_id": [f"item-{i}" for i in index],
            "title": titles.tolist(),
            "year": years.astype(np.int32),
            "text": texts,
            "poster_url": posters,
        },
        schema_overrides={"poster_url": pl.String},
    )


def write_catalog(path: Path, start: int, count: int, *, seed: int = 0, poster_base: str | None = None) -> Path:
    """Write ``item_frame(start, count)`` as one Parquet catalog file (in slices of 100k rows of generation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = 100_000
    parts = [
        item_frame(s, min(step, start + count - s), seed=seed, poster_base=poster_base)
        for s in range(start, start + count, step)
    ]
    pl.concat(parts).write_parquet(path)
    return path


def _dialogue(number: int, items: np.ndarray, years: dict[int, int], titles: dict[int, str]) -> dict[str, object]:
    """One ReDial raw-format conversation mentioning ``items`` (the last one is the suggestion)."""
    seeker, recommender = 10_000 + number % 5000, 200_000 + number % 40
    texts = ["Hi! I'm looking for a movie to watch tonight.", "Sure! What have you watched lately?"]
    texts += [f"I really liked @{i}, it was great." for i in items[:-1]]
    texts += [f"Then you might like @{items[-1]}.", "That sounds great, I'll watch it. Thanks!", "Enjoy the movie!"]
    senders = [seeker, recommender] + [seeker] * (len(items) - 1) + [recommender, seeker, recommender]
    messages = [
        {"timeOffset": 10 * n, "text": t, "senderWorkerId": s, "messageId": number * 100 + n}
        for n, (t, s) in enumerate(zip(texts, senders, strict=True))
    ]
    questions = {str(i): {"suggested": 0, "seen": 1, "liked": 1} for i in items[:-1]}
    questions[str(items[-1])] = {"suggested": 1, "seen": 0, "liked": 1}
    return {
        "conversationId": number,
        "messages": messages,
        "movieMentions": {str(i): f"{titles[i]} ({years[i]})" for i in items},
        "initiatorWorkerId": seeker,
        "respondentWorkerId": recommender,
        "initiatorQuestions": questions,
        "respondentQuestions": questions,
    }


def write_dialogues(path: Path, catalog: pl.DataFrame, *, first: int, count: int, seed: int = 0) -> Path:
    """Write ``count`` dialogues (ids ``first ..``), each mentioning 4-6 items of ``catalog``, as ReDial JSONL."""
    rng = np.random.default_rng([seed, first, 7])
    index = np.asarray([int(i.split("-")[1]) for i in catalog["item_id"]])
    titles = dict(zip(index.tolist(), catalog["title"].to_list(), strict=True))
    years = dict(zip(index.tolist(), catalog["year"].to_list(), strict=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for number in range(first, first + count):
            items = index[rng.choice(len(index), int(rng.integers(4, 7)), replace=False)]
            out.write(json.dumps(_dialogue(number, items, years, titles)) + "\n")
    return path
