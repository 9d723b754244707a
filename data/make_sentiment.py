"""Generate data/sentiment-mini.csv: short product reviews labelled negative or positive.

Each review joins a subject, a verdict phrase that carries the sentiment, and a neutral detail,
all written for this project. A seeded random generator picks the combinations, so running this
script again writes the same file. Usage: python data/make_sentiment.py [output file]
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

ROWS_PER_LABEL = 80
SEED = 7

SUBJECTS = [
    "The laptop", "This kettle", "The delivery", "The new phone", "The hotel room",
    "The coffee grinder", "This backpack", "The support team", "The desk lamp", "The headphones",
    "The bike lock", "This novel", "The train service", "The garden hose", "The rain jacket",
    "The printer", "This restaurant", "The keyboard", "The museum tour", "The washing machine",
]
VERDICTS = {
    "positive": [
        "works wonderfully", "is excellent value", "exceeded my expectations",
        "was a delight from day one", "is reliable and well made", "made me very happy",
        "is the best I have owned", "feels sturdy and pleasant", "was quick and friendly",
        "is great, I would buy it again",
    ],
    "negative": [
        "broke after a week", "is a waste of money", "was a huge disappointment",
        "stopped working almost at once", "feels cheap and flimsy", "made me regret the purchase",
        "is the worst I have owned", "was slow and rude", "is awful, I returned it",
        "failed every time I tried it",
    ],
}
DETAILS = [
    "", "I used it every day for a month.", "It arrived on a Tuesday.",
    "My sister has the same one.", "I bought it on sale.", "We took it on holiday.",
    "The box was blue.", "I compared three models first.", "It came with a manual.",
]


def reviews(rng: random.Random) -> list[tuple[str, str]]:
    rows = []
    for label, verdicts in VERDICTS.items():
        for _ in range(ROWS_PER_LABEL):
            text = f"{rng.choice(SUBJECTS)} {rng.choice(verdicts)}. {rng.choice(DETAILS)}"
            rows.append((text.strip(), label))
    rng.shuffle(rows)
    return rows


def main(out: Path) -> None:
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(reviews(random.Random(SEED)))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "sentiment-mini.csv")
