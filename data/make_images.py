"""Generate data/images-mini: small labelled images drawn procedurally (no packages needed).

Ten classes of simple patterns, three 32x32 images each, written as binary PPM (P6) by hand, so
the script needs no imaging library. Colours and positions come from a seeded random generator:
running this script again writes the same bytes. Usage: python data/make_images.py [output folder]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

SIZE = 32
IMAGES_PER_CLASS = 3
SEED = 20240601


def checkerboard(x, y, p):
    return (x // p["cell"] + y // p["cell"]) % 2 == 0


def circle(x, y, p):
    return (x - p["cx"]) ** 2 + (y - p["cy"]) ** 2 <= p["r"] ** 2


def cross(x, y, p):
    return abs(x - p["cx"]) <= p["w"] or abs(y - p["cy"]) <= p["w"]


def diagonal_stripes(x, y, p):
    return ((x + y + p["phase"]) // p["cell"]) % 2 == 0


def dots(x, y, p):
    return (x % p["cell"] - p["cell"] // 2) ** 2 + (y % p["cell"] - p["cell"] // 2) ** 2 <= 3


def horizontal_stripes(x, y, p):
    return ((y + p["phase"]) // p["cell"]) % 2 == 0


def ring(x, y, p):
    d2 = (x - p["cx"]) ** 2 + (y - p["cy"]) ** 2
    return (p["r"] - 3) ** 2 <= d2 <= p["r"] ** 2


def square(x, y, p):
    return abs(x - p["cx"]) <= p["r"] and abs(y - p["cy"]) <= p["r"]


def triangle(x, y, p):
    top = p["cy"] - p["r"]
    return top <= y <= p["cy"] + p["r"] and abs(x - p["cx"]) <= (y - top) / 2


def vertical_stripes(x, y, p):
    return ((x + p["phase"]) // p["cell"]) % 2 == 0


PATTERNS = {
    "checkerboard": checkerboard,
    "circle": circle,
    "cross": cross,
    "diagonal-stripes": diagonal_stripes,
    "dots": dots,
    "horizontal-stripes": horizontal_stripes,
    "ring": ring,
    "square": square,
    "triangle": triangle,
    "vertical-stripes": vertical_stripes,
}


def random_params(rng: random.Random) -> dict:
    return {
        "cx": rng.randint(12, 20),
        "cy": rng.randint(12, 20),
        "r": rng.randint(7, 11),
        "w": rng.randint(1, 3),
        "cell": rng.randint(4, 8),
        "phase": rng.randint(0, 7),
    }


def random_colours(rng: random.Random) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A dark background and a light foreground, so every pattern stays visible."""
    background = tuple(rng.randint(0, 90) for _ in range(3))
    foreground = tuple(rng.randint(160, 255) for _ in range(3))
    return background, foreground


def ppm_bytes(pattern, params, background, foreground) -> bytes:
    pixels = bytearray()
    for y in range(SIZE):
        for x in range(SIZE):
            pixels.extend(foreground if pattern(x, y, params) else background)
    return f"P6\n{SIZE} {SIZE}\n255\n".encode() + bytes(pixels)


def main(out: Path) -> None:
    rng = random.Random(SEED)
    for name, pattern in PATTERNS.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(IMAGES_PER_CLASS):
            params = random_params(rng)
            background, foreground = random_colours(rng)
            (folder / f"{name}-{i}.ppm").write_bytes(
                ppm_bytes(pattern, params, background, foreground)
            )
    label_map = {name: i for i, name in enumerate(sorted(PATTERNS))}
    (out / "label_map.json").write_text(json.dumps(label_map, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "images-mini")
