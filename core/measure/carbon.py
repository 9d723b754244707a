"""Grid carbon intensity: the profile's figure, a shipped per-country table, or the world average.

The table (core/carbon_intensity.csv, package data so every install has it) holds rounded annual
averages of electricity generation (g CO2e per kWh, recent years); a profile that knows its grid
should set intensity_g_per_kwh.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_PATH = Path(__file__).resolve().parent / "carbon_intensity.csv"
J_PER_KWH = 3.6e6


@dataclass(frozen=True)
class CarbonIntensity:
    g_per_kwh: float
    source: str  # "profile", "table:FR", "table:WORLD (default)"


@cache
def intensity_table() -> dict[str, float]:
    with TABLE_PATH.open(newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f)
        return {row["country"].upper(): float(row["intensity_g_per_kwh"]) for row in rows}


def resolve_intensity(settings) -> CarbonIntensity:
    if settings.intensity_g_per_kwh is not None:
        return CarbonIntensity(settings.intensity_g_per_kwh, "profile")
    if settings.country:
        return CarbonIntensity(intensity_table()[settings.country], f"table:{settings.country}")
    return CarbonIntensity(intensity_table()["WORLD"], "table:WORLD (default)")


def co2e_g(energy_j: float, intensity: CarbonIntensity) -> float:
    return energy_j / J_PER_KWH * intensity.g_per_kwh
