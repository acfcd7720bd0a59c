"""The quick `fold` and `text_words` give exactly the answers of the implementation they replaced,
kept here as the oracle: on every single code point, and on hypothesis-generated text mixing
accents, combining marks, ligatures, fullwidth forms, Greek, Cyrillic, emoji, typographic
punctuation and control characters."""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vigie.query import fold, text_words

# --- the oracle: fold and text_words as they were before the quick paths ---------------------

_ORACLE_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_ORACLE_ASCII_WORD = re.compile(r"[A-Za-z0-9]+")
_ORACLE_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "\u00ad": ""})


def oracle_fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold().translate(_ORACLE_LIGATURES))
    again = decomposed.casefold()
    if again != decomposed:
        decomposed = unicodedata.normalize("NFKD", again)
    if decomposed.isascii():
        return decomposed
    marks = frozenset(ch for ch in set(decomposed) if unicodedata.combining(ch))
    return _oracle_marks_pattern(marks).sub("", decomposed) if marks else decomposed


@lru_cache(maxsize=512)
def _oracle_marks_pattern(marks: frozenset[str]) -> re.Pattern[str]:
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(marks)) + "]")


def oracle_text_words(text: str) -> tuple[str, ...]:
    folded = oracle_fold(text)
    return tuple((_ORACLE_ASCII_WORD if folded.isascii() else _ORACLE_WORD).findall(folded))


# --- generated text ---------------------------------------------------------------------------

PIECES = (
    # accented Latin, composed and not, and capitals
    "é", "É", "è", "ê", "ë", "à", "â", "ç", "Ç", "ô", "ù", "û", "ü", "ÿ", "Å", "ñ", "e\u0301",
    "E\u0301", "a\u0300", "c\u0327", "o\u0302\u0323", "İ", "ı", "ß", "ẞ", "ø", "đ", "ł",
    # ligatures, soft hyphen and compatibility forms (some decompose to capitals)
    "œ", "Œ", "æ", "Æ", "ﬁ", "ﬂ", "ﬀ", "\u00ad", "ℌ", "ℍ", "ℂ", "K", "Å", "㎁", "½", "²", "ª",
    "Ⅻ", "ⅻ", "①", "™", "µ", "ŉ",
    # fullwidth and other widths
    "Ａ", "ｂ", "１", "：", "ｶ",
    # marks alone, and the odd ones: U+0345 folds to iota, U+034F is not a mark
    "\u0301", "\u0300", "\u0308", "\u0327", "\u0345", "\u034f", "\u20d7", "\u1dc0", "\U0001d165",
    "\u0483", "\u05b0", "\u093c",
    # Greek and Cyrillic, with their accents and final sigma
    "Σ", "σ", "ς", "ΟΔΟΣ", "ά", "Ά", "ΐ", "ϐ", "Ж", "ж", "Й", "й", "ё", "Ё", "ї",
    # typographic punctuation and spaces
    "«", "»", "‹", "›", "‘", "’", "‚", "“", "”", "„", "–", "—", "•", "·", "…", "\u00a0",
    "\u202f", "\u2009", "\u2028", "\u3000", "¿", "¡",
    # emoji (with skin tone, joiner, flag, keycap)
    "😀", "👍🏽", "👩\u200d💻", "🇫🇷", "1\ufe0f\u20e3",
    # controls and separators
    "\x00", "\x07", "\t", "\n", "\r", "\x1c", "\x1f", "\x7f", "\x85", "\u200b", "\ufeff",
    # ASCII words and separators
    "lait", "Boreale", "ACME", "x2", "_", " ", "'", "-", ".", ",", "a", "Z", "9",
)  # fmt: skip

texts = st.lists(
    st.one_of(st.sampled_from(PIECES), st.characters(), st.text(max_size=3)), max_size=40
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts)
@example("Cœur Boréale « rappel » – l’usine ΟΔΟΣ Ｍｏｎｔｒéａｌ 😀\x00ℌello")
@example("ﬁ\u0345Σ")
@example("a\u034fb \u0301x")
def test_fold_and_text_words_give_the_answers_of_the_former_implementation(text: str) -> None:
    assert fold(text) == oracle_fold(text)
    assert text_words(text) == oracle_text_words(text)


def test_fold_and_text_words_agree_with_the_former_implementation_on_every_code_point() -> None:
    """Between two letters, so that what a character joins or separates counts too. Unassigned
    and private-use code points (no case, no decomposition, not marks) are left to hypothesis."""
    for ch in map(chr, range(sys.maxunicode + 1)):
        if unicodedata.category(ch) in ("Cn", "Co"):
            continue
        text = f"É{ch}b"
        assert fold(text) == oracle_fold(text), hex(ord(ch))
        assert text_words(text) == oracle_text_words(text), hex(ord(ch))
