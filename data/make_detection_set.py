"""Write data/shapes-detect/: 24 small images of drawn shapes with their boxes, COCO JSON layout.

    python data/make_detection_set.py

Each 128 x 128 PNG holds 1 to 3 filled shapes (circle, square, triangle) of seeded random size,
place and colour on a dark gradient with light noise; instances.json lists them as COCO does
(images, annotations with bbox [x, y, width, height] and area, categories). Shape sizes span COCO's
small (< 32² px), medium and large (> 96² px) ranges. The same seed writes the same files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 128
COUNT = 24
CATEGORIES = ({"id": 1, "name": "circle"}, {"id": 2, "name": "square"},
              {"id": 3, "name": "triangle"})
OUT = Path(__file__).resolve().parent / "shapes-detect"


def draw_image(rng: random.Random, index: int) -> tuple[Image.Image, list[dict]]:
    image = Image.new("RGB", (SIZE, SIZE))
    base = [rng.randrange(0, 50) for _ in range(3)]
    image.putdata([tuple(b + (i // SIZE) // 8 + rng.randrange(0, 4) for b in base)
                   for i in range(SIZE * SIZE)])
    draw = ImageDraw.Draw(image)
    shapes = []
    for _ in range(rng.randint(1, 3)):
        side = rng.choice((rng.randint(12, 28), rng.randint(34, 90), rng.randint(98, 112)))
        x, y = rng.randint(0, SIZE - side), rng.randint(0, SIZE - side)
        colour = tuple(rng.randrange(120, 256) for _ in range(3))
        category = rng.choice(CATEGORIES)
        box = (x, y, x + side, y + side)
        if category["name"] == "circle":
            draw.ellipse((x, y, x + side - 1, y + side - 1), fill=colour)
        elif category["name"] == "square":
            draw.rectangle((x, y, x + side - 1, y + side - 1), fill=colour)
        else:
            draw.polygon([(x, y + side - 1), (x + side - 1, y + side - 1),
                          (x + (side - 1) / 2, y)], fill=colour)
        shapes.append({"category_id": category["id"], "bbox": [box[0], box[1], side, side],
                       "area": float(side * side), "iscrowd": 0})
    return image, shapes


def main() -> None:
    rng = random.Random(2026)
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in range(COUNT):
        image, shapes = draw_image(rng, index)
        name = f"shapes-{index:02d}.png"
        image.save(OUT / "images" / name, optimize=True)
        images.append({"id": index + 1, "file_name": name, "width": SIZE, "height": SIZE})
        for shape in shapes:
            annotations.append({"id": len(annotations) + 1, "image_id": index + 1, **shape})
    instances = {"info": {"description": "energy-console shapes-detect, CC0 1.0"},
                 "images": images, "annotations": annotations, "categories": list(CATEGORIES)}
    (OUT / "instances.json").write_text(json.dumps(instances, indent=1) + "\n")


if __name__ == "__main__":
    main()
