"""Benchmark: vigie.sentiment against baselines on the dev set, and its scoring throughput.

For French and English, prints val macro-F1 (3 classes) of vigie.sentiment, of a
majority-class baseline and, for English, of vaderSentiment (if installed; compound
thresholds +-0.05 as its authors advise), then texts per second on one core: score_texts
(batch) with cold caches (first pass over train+val, every word new to the caches) and warm
(second pass), score_text per item, and score_texts with lang="auto" (language detection).

    .venv/bin/python bench/bench_sentiment.py [--data ../shared/bench/sentiment_dev]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import vigie  # noqa: F401  (telemetry off)
from vigie import sentiment
from vigie.sentiment import Language, detect_language, load_model, score_text, score_texts

# The dev set sits beside the repository, in ../shared/bench (not versioned with the code).
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "bench" / "sentiment_dev"
LABEL_IDS = {"negative": 0, "neutral": 1, "positive": 2}
VADER_THRESHOLD = 0.05


def read_split(data: Path, lang: str, split: str) -> tuple[list[str], list[int]]:
    labels = [int(line) for line in (data / lang / f"{split}_labels.txt").read_text().split()]
    texts = (data / lang / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
    return texts[: len(labels)], labels


def macro_f1(truth: Sequence[int], predicted: Sequence[int]) -> float:
    scores = []
    for label in range(3):
        pairs = list(zip(truth, predicted, strict=True))
        true_positives = sum(1 for t, p in pairs if t == p == label)
        false_positives = sum(1 for t, p in pairs if p == label != t)
        false_negatives = sum(1 for t, p in pairs if t == label != p)
        denominator = 2 * true_positives + false_positives + false_negatives
        scores.append(2 * true_positives / denominator if denominator else 0.0)
    return sum(scores) / len(scores)


def clear_caches(lang: Language) -> None:
    # Cold start for every word: the tokeniser's, the n-grams' and the model's caches.
    sentiment._word_tokens.cache_clear()
    sentiment._run_tokens.cache_clear()
    load_model(lang).clear_caches()


def texts_per_second(run: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    run()
    return count / (time.perf_counter() - started)


def vader_predictions(texts: Sequence[str]) -> tuple[list[int], float] | None:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        return None
    analyser = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    compounds = [analyser.polarity_scores(text)["compound"] for text in texts]
    speed = len(texts) / (time.perf_counter() - started)
    labels = [0 if c <= -VADER_THRESHOLD else 2 if c >= VADER_THRESHOLD else 1 for c in compounds]
    return labels, speed


def bench_language(data: Path, lang: Language) -> None:
    train_texts, train_labels = read_split(data, lang, "train")
    val_texts, val_labels = read_split(data, lang, "val")
    load_model(lang)  # loading is timed apart: it happens once per process

    predicted = [LABEL_IDS[result.label] for result in score_texts(val_texts, lang)]
    majority = Counter(train_labels).most_common(1)[0][0]
    rows = [
        ("vigie.sentiment", macro_f1(val_labels, predicted)),
        (f"majority class ({majority})", macro_f1(val_labels, [majority] * len(val_labels))),
    ]
    vader_speed = None
    if lang == "en":
        vader = vader_predictions(val_texts)
        if vader is None:
            print("  (vaderSentiment not installed: pip install vaderSentiment to compare)")
        else:
            rows.append(("vaderSentiment 3.x", macro_f1(val_labels, vader[0])))
            vader_speed = vader[1]

    stream = train_texts + val_texts
    clear_caches(lang)
    cold = texts_per_second(lambda: score_texts(stream, lang), len(stream))
    warm = texts_per_second(lambda: score_texts(stream, lang), len(stream))
    clear_caches(lang)
    single = texts_per_second(lambda: [score_text(text, lang) for text in stream], len(stream))
    clear_caches(lang)
    # py3langid's model loads once per process (reported on its own), then detection runs.
    started = time.perf_counter()
    detect_language("un texte ambigu of mixed words pour charger le modèle de langue")
    identifier_load = time.perf_counter() - started
    auto = texts_per_second(lambda: score_texts(stream, "auto"), len(stream))

    print(f"[{lang}] val macro-F1 ({len(val_texts)} texts)")
    for name, score in rows:
        print(f"  {name:<28} {score:.3f}")
    print(f"[{lang}] throughput, texts/s ({len(stream)} distinct texts, one core)")
    print(f"  score_texts, cold caches     {cold:8.0f}")
    print(f"  score_texts, warm caches     {warm:8.0f}")
    print(f"  score_text, one by one       {single:8.0f}  (cold caches)")
    print(
        f"  score_texts, lang='auto'     {auto:8.0f}  (cold caches; language model loaded "
        f"once before: {identifier_load:.2f} s)"
    )
    if vader_speed is not None:
        print(f"  vaderSentiment polarity      {vader_speed:8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    arguments = parser.parse_args()
    started = time.perf_counter()
    load_model("fr")
    load_model("en")
    print(f"models loaded in {time.perf_counter() - started:.2f} s")
    languages: tuple[Language, ...] = ("fr", "en")
    for lang in languages:
        bench_language(arguments.data, lang)


if __name__ == "__main__":
    main()
