#!/usr/bin/env python3
"""Reads tests/golden/sample.osr (written by peace-scores' build_osr) with the PyPI package
osrparse, an independent .osr parser, and checks every header field.

    pip install osrparse==7.0.1
    python3 crates/scores/tests/golden/check_osr.py
"""
import datetime
import pathlib
import sys

from osrparse import Replay

HERE = pathlib.Path(__file__).parent


def main() -> int:
    r = Replay.from_path(HERE / "sample.osr")
    expected = {
        "mode": 0,
        "game_version": 20231030,
        "beatmap_hash": "1cf5b2c2edfafd055536d2cefcb89c0e",
        "username": "peppy",
        "replay_hash": "0123456789abcdef0123456789abcdef",
        "count_300": 1092,
        "count_100": 23,
        "count_50": 1,
        "count_geki": 221,
        "count_katu": 17,
        "count_miss": 2,
        "score": 48211634,
        "max_combo": 1503,
        "perfect": False,
        "mods": 72,
        "replay_id": 42,
    }
    actual = {
        "mode": r.mode.value,
        "game_version": r.game_version,
        "beatmap_hash": r.beatmap_hash,
        "username": r.username,
        "replay_hash": r.replay_hash,
        "count_300": r.count_300,
        "count_100": r.count_100,
        "count_50": r.count_50,
        "count_geki": r.count_geki,
        "count_katu": r.count_katu,
        "count_miss": r.count_miss,
        "score": r.score,
        "max_combo": r.max_combo,
        "perfect": bool(r.perfect),
        "mods": r.mods.value,
        "replay_id": r.replay_id,
    }
    failed = 0
    for key, want in expected.items():
        if actual[key] != want:
            print(f"FAIL {key}: {actual[key]!r} != {want!r}")
            failed += 1
    when = r.timestamp.replace(tzinfo=datetime.timezone.utc) if r.timestamp.tzinfo is None else r.timestamp
    if when != datetime.datetime(2023, 11, 4, 19, 35, 12, tzinfo=datetime.timezone.utc):
        print(f"FAIL timestamp: {r.timestamp!r}")
        failed += 1
    # The embedded LZMA frames decode: osrparse decompresses them into events (it drops
    # the two leading skip frames and the trailing seed frame itself).
    if len(r.replay_data) != 2 or r.replay_data[0].x != 100.5:
        print(f"FAIL replay_data: {r.replay_data!r}")
        failed += 1
    checks = len(expected) + 2
    print(f"{checks - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
