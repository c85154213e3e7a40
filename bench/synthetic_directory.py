"""A synthetic national agency directory with the QCVN 102 hierarchy, for benchmarks and tests.

Level 1 (``000.00.00.MXX``): central bodies (G01–G40), the 63 provincial People's Committees
(H01–H63: H26 is Hà Nội, H41 Nghệ An, H49 Quảng Ninh, as in the real directory) and People's
Councils (K01–K63). Level 2 (``000.00.YY``): a province's departments (Sở, 01–29) and its
districts (30–…); a ministry's general departments and departments. Level 3 (``000.ZZ.YY``):
a district's wards and communes and its offices; a department's sub-units. Level 4
(``VVV.ZZ.YY``): units under a commune (schools, health stations) or a sub-unit.

Fan-outs are drawn from a seeded generator, so the same count and seed give the same file.
Entries come level by level, so every parent precedes its children and any prefix of the
output is a directory whose hierarchy is complete; the full hierarchy has about 159,000 units.

    python bench/synthetic_directory.py --count 120000 --out directory.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

_PROVINCES = {26: "thành phố Hà Nội", 41: "tỉnh Nghệ An", 49: "tỉnh Quảng Ninh"}
_DEPARTMENTS = (
    "Sở Tài chính",
    "Sở Tư pháp",
    "Sở Nội vụ",
    "Sở Xây dựng",
    "Sở Y tế",
    "Sở Giáo dục và Đào tạo",
    "Sở Công Thương",
    "Sở Nông nghiệp và Môi trường",
    "Sở Văn hóa, Thể thao và Du lịch",
    "Sở Khoa học và Công nghệ",
    "Thanh tra",
    "Văn phòng Ủy ban nhân dân",
)
_LEVEL4 = ("Trường Tiểu học", "Trường Trung học cơ sở", "Trạm Y tế", "Trường Mầm non")


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    parent: str
    level: int


def _code(v: int, z: int, y: int, top: str) -> str:
    return f"{v:03d}.{z:02d}.{y:02d}.{top}"


def _province(n: int) -> str:
    return _PROVINCES.get(n, f"tỉnh số {n}")


def _level1() -> list[Unit]:
    units = [
        Unit(_code(0, 0, 0, f"G{n:02d}"), f"Cơ quan trung ương số {n}", "", 1) for n in range(1, 41)
    ]
    for n in range(1, 64):
        units.append(Unit(_code(0, 0, 0, f"H{n:02d}"), f"Ủy ban nhân dân {_province(n)}", "", 1))
        units.append(Unit(_code(0, 0, 0, f"K{n:02d}"), f"Hội đồng nhân dân {_province(n)}", "", 1))
    return units


def _children(unit: Unit, rng: random.Random) -> list[Unit]:
    _, z, y, top = unit.code.split(".")
    kind = top[0]
    if unit.level == 1:
        if kind == "K":
            return [Unit(_code(0, 0, 1, top), f"Văn phòng {unit.name}", unit.code, 2)]
        departments = rng.randint(15, 29)
        names = [
            _DEPARTMENTS[i] if i < len(_DEPARTMENTS) and kind == "H" else f"Cục số {i + 1}"
            for i in range(departments)
        ]
        out = [
            Unit(_code(0, 0, i + 1, top), f"{names[i]} ({top})", unit.code, 2)
            for i in range(departments)
        ]
        if kind == "H":
            out += [
                Unit(
                    _code(0, 0, 30 + d, top),
                    f"Ủy ban nhân dân huyện số {d + 1} ({top})",
                    unit.code,
                    2,
                )
                for d in range(rng.randint(10, 30))
            ]
        return out
    if unit.level == 2:
        district = kind == "H" and int(y) >= 30
        count = rng.randint(10, 40) if district else rng.randint(2, 8)
        label = "Ủy ban nhân dân xã số" if district else "Đơn vị trực thuộc số"
        return [
            Unit(_code(0, i + 1, int(y), top), f"{label} {i + 1}, {unit.name}", unit.code, 3)
            for i in range(count)
        ]
    if unit.level == 3:
        return [
            Unit(
                _code(i + 1, int(z), int(y), top),
                f"{_LEVEL4[i % len(_LEVEL4)]} số {i + 1}, {unit.name}",
                unit.code,
                4,
            )
            for i in range(rng.randint(0, 5))
        ]
    return []


def generate(count: int, seed: int = 102) -> Iterator[Unit]:
    """Up to *count* units, level by level (parents first)."""
    rng = random.Random(seed)
    level = _level1()
    made = 0
    while level and made < count:
        for unit in level:
            if made == count:
                return
            yield unit
            made += 1
        level = [child for unit in level for child in _children(unit, rng)]


def write_csv(units: Iterator[Unit], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["code", "name", "parent"])
    n = 0
    for unit in units:
        writer.writerow([unit.code, unit.name, unit.parent])
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--count", type=int, default=120_000, help="units to write (default 120,000)"
    )
    parser.add_argument("--seed", type=int, default=102)
    parser.add_argument("--out", type=Path, help="CSV file to write (default: standard output)")
    args = parser.parse_args()
    if args.out is None:
        written = write_csv(generate(args.count, args.seed), sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8", newline="") as out:
            written = write_csv(generate(args.count, args.seed), out)
    print(f"{written:,} agencies", file=sys.stderr)


if __name__ == "__main__":
    main()
