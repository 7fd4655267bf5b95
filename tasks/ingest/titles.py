"""Movie-title parsing and normalisation, shared by catalog building and mention linking.

Two names denote the same movie when their normalised titles and years match:
``"Usual Suspects, The (1995)"`` and ``"The Usual Suspects  (1995)"`` both give
``("the usual suspects", 1995)``.
"""

from __future__ import annotations

import re
import unicodedata

_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.*),\s*(?P<article>the|a|an|les|la|le|il|el|das|der|die)$", re.I)
_NON_WORD = re.compile(r"[^\w]+")


def split_title_year(name: str) -> tuple[str, int | None]:
    """Split ``"Title (1999)"`` into ``("Title", 1999)``; a name without a year gives ``(name, None)``.

    Example:
        >>> split_title_year("Police Academy  (1984)")
        ('Police Academy', 1984)
    """
    name = " ".join(name.split())
    match = _YEAR_SUFFIX.search(name)
    if not match:
        return name, None
    return name[: match.start()].strip(), int(match.group(1))


def normalise_title(title: str) -> str:
    """Case-, accent-, punctuation- and article-order-insensitive form of a title.

    Example:
        >>> normalise_title("Usual Suspects, The")
        'the usual suspects'
    """
    text = unicodedata.normalize("NFKD", title)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).strip()
    text = re.sub(r"\s*\(.*?\)\s*$", "", text)  # drop alternative titles: "Seven (Se7en)"
    match = _TRAILING_ARTICLE.match(text)
    if match:
        text = f"{match.group('article')} {match.group('body')}"
    text = text.replace("&", " and ")
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())


def title_key(title: str, year: int | None) -> tuple[str, int | None]:
    """The key two names must share to denote the same movie."""
    return normalise_title(title), year
