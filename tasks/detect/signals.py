"""The signals of a crisis beyond raw volume, and the one severity score that combines them.

Each signal is a plain function of the mentions of the current window (and, for negativity, of
its baseline). `assess_severity` turns them into a score from 0 to 100 with each signal's
contribution kept, and a level: veille < vigilance < alerte < crise. Volume alone cannot reach
`alerte`: a popular, positive campaign is busy but is not a crisis; nor can a worrying tone at
the usual volume (the other signals are damped until the volume moves). Pick-up by a major
outlet and spread across platforms weigh only as much as the story is worrying (negative or
crisis vocabulary), for the same reason.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

from vigie.models import WindowMention
from vigie.query import text_words

Level = Literal["veille", "vigilance", "alerte", "crise"]
LEVELS: tuple[Level, ...] = ("veille", "vigilance", "alerte", "crise")

# Crisis vocabulary, French and English, weighted by how strongly a word announces a crisis.
# Entries are folded like queries (no accents, lower case); a trailing * is a prefix.
CRISIS_LEXICON: dict[str, float] = {
    # French
    "boycott*": 1.0,
    "scandale*": 1.0,
    "rappel*": 0.8,
    "rappele*": 0.8,
    "poursuite*": 0.8,
    "plainte*": 0.7,
    "proces": 0.7,
    "fuite de donnees": 1.0,
    "piratage": 0.9,
    "cyberattaque*": 0.9,
    "intoxication*": 1.0,
    "contamin*": 0.9,
    "listeria": 1.0,
    "salmonelle*": 1.0,
    "greve*": 0.7,
    "demission*": 0.7,
    "enquete*": 0.6,
    "amende*": 0.7,
    "accident*": 0.6,
    "deces": 0.9,
    "mort": 0.6,
    "morts": 0.6,
    "hospitalis*": 0.9,
    "fraude*": 0.9,
    "corruption": 0.9,
    "harcelement": 0.9,
    "licenciement*": 0.6,
    "pollution": 0.6,
    "petition*": 0.6,
    "polemique*": 0.7,
    "tolle": 0.8,
    "indign*": 0.6,
    "mise en cause": 0.7,
    "malade*": 0.6,
    "danger*": 0.5,
    "alerte": 0.4,
    # English
    "recall*": 0.8,
    "lawsuit*": 0.8,
    "sued": 0.8,
    "data breach": 1.0,
    "breach": 0.8,
    "hacked": 0.8,
    "hacker*": 0.7,
    "hacking": 0.7,
    "poisoning": 1.0,
    "contaminat*": 0.9,
    "strike*": 0.5,
    "resign*": 0.7,
    "investigation*": 0.6,
    "probe": 0.6,
    "fined": 0.7,
    "outage*": 0.7,
    "fraud*": 0.9,
    "scandal*": 1.0,
    "backlash": 0.8,
    "outrage*": 0.8,
    "layoff*": 0.6,
    "death*": 0.8,
    "died": 0.8,
    "hospitali*": 0.9,
    "sick": 0.5,
    "harassment": 0.9,
}

Sensitivity = Literal["low", "medium", "high"]
# Score at which each level starts, at medium sensitivity; high lowers them, low raises them.
LEVEL_STARTS = {"vigilance": 25.0, "alerte": 45.0, "crise": 70.0}
SENSITIVITY_SHIFT = {"low": 10.0, "medium": 0.0, "high": -10.0}
WEIGHTS = {"volume": 35.0, "negativity": 25.0, "vocabulary": 20.0, "pickup": 10.0, "spread": 10.0}


@dataclass(frozen=True, slots=True)
class Severity:
    score: float
    level: Level
    contributions: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, object] = field(default_factory=dict)


Compiled = list[tuple[tuple[str, ...], bool, float, str]]


def _compile(lexicon: Mapping[str, float]) -> Compiled:
    compiled = []
    for term, weight in lexicon.items():
        prefix = term.endswith("*")
        words = text_words(term.rstrip("*"))
        if words:
            compiled.append((words, prefix, weight, term))
    return compiled


def _term_pattern(terms: tuple[str, ...], prefix: bool) -> re.Pattern[str]:
    """The term in a text's folded words joined by single spaces: whole words, the last one
    a prefix when `prefix`."""
    words = " ".join(re.escape(word) for word in terms)
    return re.compile(rf"(?<![^ ]){words}" + ("[^ ]*" if prefix else "(?![^ ])"))


def _first_start(joined: str, pattern: re.Pattern[str]) -> int | None:
    """The position (in words) where `pattern` first matches the joined words, or None."""
    match = pattern.search(joined)
    return None if match is None else joined.count(" ", 0, match.start())


@dataclass(frozen=True, slots=True)
class _Scanner:
    """A lexicon made quick to look for: a text costs a set intersection and one regular
    expression, not a pass per term (a 10x burst's story copies are read in about a second,
    bench_load.py)."""

    compiled: Compiled
    patterns: list[re.Pattern[str]]  # each term's, in lexicon order
    # The terms that start with a whole word (phrases, and words without `*`), by that word.
    by_first_word: dict[str, list[int]]
    # The one-word prefixes (`rappel*`), as the regular expression of a word starting with
    # any of them, and each prefix's terms.
    prefix_words: re.Pattern[str] | None
    by_prefix: dict[str, list[int]]
    # The terms of each (title, summary) read: detection reads a window's texts for the topic,
    # then again for each story of it.
    memo: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def terms_of(self, title: str, summary: str) -> dict[str, float]:
        """The lexicon terms found in a mention's title and summary."""
        key = (title, summary)
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= MEMO_TEXTS:
                self.memo.clear()  # bounded: it holds on to the texts
            found = self.memo[key] = _terms_in(text_words(f"{title} {summary}"), self)
        return found


MEMO_TEXTS = 20_000  # texts whose terms a lexicon's scanner remembers


@functools.lru_cache(maxsize=16)
def _scanner_of(lexicon: tuple[tuple[str, float], ...]) -> _Scanner:
    """The scanner of a lexicon (its items), kept with its memo for the process."""
    return _scanner(_compile(dict(lexicon)))


def _scanner(compiled: Compiled) -> _Scanner:
    by_first_word: dict[str, list[int]] = {}
    by_prefix: dict[str, list[int]] = {}
    for number, (terms, prefix, _, _) in enumerate(compiled):
        if len(terms) == 1 and prefix:
            by_prefix.setdefault(terms[0], []).append(number)
        else:
            by_first_word.setdefault(terms[0], []).append(number)
    alternatives = "|".join(re.escape(p) for p in sorted(by_prefix, key=len, reverse=True))
    pattern = re.compile(rf"(?<![^ ])(?:{alternatives})[^ ]*") if by_prefix else None
    patterns = [_term_pattern(terms, prefix) for terms, prefix, _, _ in compiled]
    return _Scanner(compiled, patterns, by_first_word, pattern, by_prefix)


def _terms_in(words: Sequence[str], scanner: _Scanner) -> dict[str, float]:
    """The lexicon terms found in `words`, in lexicon order."""
    if not words:
        return {}
    found: set[int] = set()
    compiled = scanner.compiled
    joined = " ".join(words)
    for first in scanner.by_first_word.keys() & set(words):
        for number in scanner.by_first_word[first]:
            one_word = len(compiled[number][0]) == 1
            if one_word or scanner.patterns[number].search(joined):
                found.add(number)
    if scanner.prefix_words is not None:
        for word in set(scanner.prefix_words.findall(joined)):
            for start, numbers in scanner.by_prefix.items():
                if word.startswith(start):
                    found.update(numbers)
    return {compiled[number][3]: compiled[number][2] for number in sorted(found)}


def crisis_terms(text: str, lexicon: Mapping[str, float] = CRISIS_LEXICON) -> dict[str, float]:
    """The lexicon terms found in `text`, with their weights."""
    return _terms_in(text_words(text), _scanner_of(tuple(lexicon.items())))


def vocabulary_signal(
    mentions: Sequence[WindowMention], lexicon: Mapping[str, float] = CRISIS_LEXICON
) -> tuple[float, dict[str, int]]:
    """In [0, 1]: the average crisis weight per mention (the strongest term of each), and how
    many mentions carry each term."""
    if not mentions:
        return 0.0, {}
    scanner = _scanner_of(tuple(lexicon.items()))
    total = 0.0
    counts: dict[str, int] = {}
    for (title, summary), copies in _texts(mentions).items():
        found = scanner.terms_of(title, summary)
        if found:
            total += max(found.values()) * copies
            for term in found:
                counts[term] = counts.get(term, 0) + copies
    return min(1.0, total / len(mentions) * 1.5), counts


def _texts(mentions: Iterable[WindowMention]) -> Counter[tuple[str, str]]:
    """How many of the mentions carry each (title, summary), in order of first sight: a
    story's copies (one per source) share their text, so each text is read once."""
    return Counter((mention.title, mention.summary) for mention in mentions)


# Words as written, before folding: what the crisis terms are shown as in emails.
_WRITTEN_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Enough mentions read to find how a term is written: a term of a burst is seen at once.
MAX_MENTIONS_READ_FOR_WORDS = 2000


@functools.lru_cache(maxsize=65536)
def _token_pairs(token: str) -> tuple[tuple[str, str], ...]:
    """A written token's (folded word, written form) pairs: one, or for a token that folds to
    several words (a ligature, a mark) each folded word as itself. Cached: a burst's texts
    are mostly the same few thousand words."""
    folded = text_words(token)
    return ((folded[0], token.lower()),) if len(folded) == 1 else tuple((w, w) for w in folded)


def written_terms(
    mentions: Sequence[WindowMention],
    labels: Iterable[str],
    lexicon: Mapping[str, float] = CRISIS_LEXICON,
) -> dict[str, str]:
    """How each lexicon term (`rappel*`, `fuite de donnees`) is written in the mentions, in
    lower case with its accents: the commonest matched form ("rappel", "fuite de données").

    A term not met in the first MAX_MENTIONS_READ_FOR_WORDS mentions is left out (the caller
    shows the term itself then).
    """
    named = set(labels)
    scanner = _scanner_of(tuple(lexicon.items()))
    wanted = [
        (len(terms), pattern, label)
        for (terms, _, _, label), pattern in zip(scanner.compiled, scanner.patterns, strict=True)
        if label in named
    ]
    seen: dict[str, Counter[str]] = {}
    for (title, summary), copies in _texts(mentions[:MAX_MENTIONS_READ_FOR_WORDS]).items():
        if named.isdisjoint(scanner.terms_of(title, summary)):
            continue  # most texts of a burst carry none of its terms
        tokens = _WRITTEN_WORD.findall(f"{title} {summary}")
        pairs = list(chain.from_iterable(map(_token_pairs, tokens)))
        joined = " ".join(w for w, _ in pairs)
        for size, pattern, label in wanted:
            start = _first_start(joined, pattern)
            if start is not None:
                form = " ".join(original for _, original in pairs[start : start + size])
                seen.setdefault(label, Counter())[form] += copies
    return {label: forms.most_common(1)[0][0] for label, forms in seen.items()}


def negativity_signal(
    mentions: Sequence[WindowMention], baseline_share: float, *, min_negative: int = 3
) -> tuple[float, int, float]:
    """In [0, 1]: how far the share of negative mentions rose above its baseline share.

    Returns (signal, negative count, negative share); fewer than `min_negative` negative
    mentions give no signal.
    """
    scored = [m.sentiment for m in mentions if m.sentiment is not None]
    if not scored:
        return 0.0, 0, 0.0
    negative = sum(1 for s in scored if s <= -0.05)
    share = negative / len(scored)
    if negative < min_negative:
        return 0.0, negative, share
    rise = (share - baseline_share) / max(0.5, 1.0 - baseline_share)
    return max(0.0, min(1.0, rise)), negative, share


def pickup_signal(mentions: Iterable[WindowMention]) -> tuple[float, list[str]]:
    """1 when a major (tier-1) outlet carries the topic in the window."""
    outlets = sorted({m.source for m in mentions if m.tier == 1})
    return (1.0 if outlets else 0.0), outlets


def spread_signal(mentions: Sequence[WindowMention]) -> tuple[float, int, int]:
    """In [0, 1]: how many platforms and sources carry the topic (3 platforms or 6 sources
    is full spread). Returns (signal, platforms, sources)."""
    platforms = len({m.platform for m in mentions})
    sources = len({m.source for m in mentions})
    signal = max((platforms - 1) / 2, (sources - 1) / 5, 0.0)
    return min(1.0, signal), platforms, sources


def level_for(score: float, sensitivity: Sensitivity = "medium") -> Level:
    shift = SENSITIVITY_SHIFT[sensitivity]
    level: Level = "veille"
    for name in ("vigilance", "alerte", "crise"):
        if score >= LEVEL_STARTS[name] + shift:
            level = name  # type: ignore[assignment]
    return level


def assess_severity(
    mentions: Sequence[WindowMention],
    *,
    volume_score: float,
    enough_volume: bool,
    baseline_negative_share: float,
    sensitivity: Sensitivity = "medium",
    lexicon: Mapping[str, float] = CRISIS_LEXICON,
    window_hours: float = 1.0,
) -> Severity:
    """Combine the signals of a topic's window into one explained score and its level.

    `volume_score` is the volume detector's score in [0, 1]; `enough_volume` is False when the
    window holds fewer mentions than the configured minimum (then nothing contributes).
    """
    if not enough_volume or not mentions:
        return Severity(0.0, "veille", dict.fromkeys(WEIGHTS, 0.0), {"mentions": len(mentions)})
    vocabulary, terms = vocabulary_signal(mentions, lexicon)
    negativity, negative, share = negativity_signal(mentions, baseline_negative_share)
    pickup, outlets = pickup_signal(mentions)
    spread, platforms, sources = spread_signal(mentions)
    concern = max(vocabulary, negativity)
    # A worrying tone at the usual volume is a reason for vigilance, not an alert: the other
    # signals count fully only when the volume moves too.
    gate = min(1.0, 0.4 + volume_score)
    contributions = {
        "volume": WEIGHTS["volume"] * volume_score,
        "negativity": WEIGHTS["negativity"] * negativity * gate,
        "vocabulary": WEIGHTS["vocabulary"] * vocabulary * gate,
        "pickup": WEIGHTS["pickup"] * pickup * concern * gate,
        "spread": WEIGHTS["spread"] * spread * concern * gate,
    }
    contributions = {k: round(v, 1) for k, v in contributions.items()}
    score = round(min(100.0, sum(contributions.values())), 1)
    top_terms = dict(sorted(terms.items(), key=lambda kv: -kv[1])[:8])
    evidence: dict[str, object] = {
        "mentions": len(mentions),
        "negative": negative,
        "negative_share": round(share, 3),
        "baseline_negative_share": round(baseline_negative_share, 3),
        "crisis_terms": top_terms,
        # The same terms as the mentions write them, for people to read.
        "crisis_words": written_terms(mentions, top_terms, lexicon),
        "major_outlets": outlets,
        "platforms": platforms,
        "sources": sources,
        # The speed of the spread: distinct sources carrying the topic per hour of window.
        "sources_per_hour": round(sources / window_hours, 2),
    }
    return Severity(score, level_for(score, sensitivity), contributions, evidence)
