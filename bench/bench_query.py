"""Benchmark: watch-query matching speed, in mentions per second, over synthetic texts.

Each mention is folded into words once (`text_words`), as `tasks.collect.match` does, then every
query of a set is evaluated on it. Prints mentions/s for folding alone and for each query set;
queries this version cannot parse are reported as skipped. Figures only.

    python bench/bench_query.py [--texts 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import time

from vigie.errors import QueryError
from vigie.query import Node, parse_query, text_words

VOCABULARY = (
    "la le les un une des de du et à en pour sur avec dans rappel rappels lait fromage beurre "
    "laiterie boréale Boréale usine Chicoutimi Montréal Québec scandale enquête crise grève "
    "salmonelle listeria contamination produit lot consommateurs santé ministère directrice "
    "the a of and to in for on with recall milk cheese dairy plant outbreak strike consumers "
    "health ministry director contamination product batch investigation crisis « » , . : !"
).split()

QUERY_SETS = {
    "words and phrases": [
        '("laiterie boréale" OR boreale) NOT recrutement',
        '"Isabelle Gagnon" OR "directrice de la laiterie"',
        "salmonelle OR listeria OR contamination",
    ],
    "prefixes": ["rappel* (lait* OR fromage*)", "recall* (milk OR chees*) NOT recipe*"],
    "proximity": [
        "rappel* NEAR/5 (lait OR fromage)",
        '"laiterie boréale" NEAR/10 (crise OR scandale OR grève)',
        "recall NEAR/3 milk",
    ],
}


def texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(VOCABULARY, k=rng.randint(20, 80))) for _ in range(count)]


def best_rate(count: int, repeat: int, run: object) -> float:
    assert callable(run)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return count / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    corpus = texts(args.texts)
    rate = best_rate(args.texts, args.repeat, lambda: [text_words(t) for t in corpus])
    print(f"text_words alone: {rate:,.0f} mentions/s over {args.texts:,} texts")
    folded = [text_words(t) for t in corpus]
    for label, queries in QUERY_SETS.items():
        parsed: list[Node] = []
        for query in queries:
            try:
                parsed.append(parse_query(query))
            except QueryError as err:
                print(f"  skipped {query!r}: {err}")
        if not parsed:
            continue
        hits = sum(1 for words in folded if any(q.matches(words) for q in parsed))

        def run(parsed: list[Node] = parsed) -> None:
            for words in folded:
                for query in parsed:
                    query.matches(words)

        rate = best_rate(args.texts, args.repeat, run)
        print(
            f"{label} ({len(parsed)} queries): {rate:,.0f} mentions/s "
            f"(all queries evaluated on each), {hits:,} mentions matched"
        )


if __name__ == "__main__":
    main()
