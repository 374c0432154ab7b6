#!/usr/bin/env python3
"""Golden star-rating and pp vectors from rosu-pp-py, an independent build of the same
calculator (rosu-pp-py 4.0.2 bundles rosu-pp 4.0.1, the version peace-scores pins).

For each test map under ../maps, in its own mode and (for the osu! map) each convert, with a
few stable mod combinations, it writes one full-combo play and one imperfect play, scored as
stable plays (lazer=False). `tests/pp.rs` replays every case through `peace_scores::pp`.

Rerun from crates/scores/tests/golden:
    pip install rosu-pp-py==4.0.2
    python3 pp_vectors.py > pp_vectors.json
"""

import json
from importlib.metadata import version
import sys
from pathlib import Path

import rosu_pp_py as rosu

GAME_MODES = [rosu.GameMode.Osu, rosu.GameMode.Taiko, rosu.GameMode.Catch, rosu.GameMode.Mania]
MAPS = Path(__file__).resolve().parent.parent / "maps"

# Stable mod bits: HD 8, HR 16, DT 64, EZ 2, HT 256, 4K 32768, 5K 65536.
MODS = [0, 8 | 16, 64, 2 | 256, 8 | 64]
CONVERT_TO_MANIA_MODS = [0, 32768, 65536]


def degraded(mode, s, max_combo):
    """A plausible imperfect play from a full-combo state, keeping the object count."""
    counts = dict(n300=s.n300, n100=s.n100, n50=s.n50, ngeki=s.n_geki, nkatu=s.n_katu, nmiss=s.misses)
    if mode in (0, 1):
        counts["n300"] -= 3
        counts["n100"] += 2
        counts["nmiss"] += 1
    elif mode == 2:
        counts["n300"] -= 1
        counts["nmiss"] += 1
        counts["n50"] -= 2
        counts["nkatu"] += 2
    else:
        counts["ngeki"] -= 3
        counts["n300"] += 1
        counts["n100"] += 1
        counts["nmiss"] += 1
    return counts, max_combo // 2


def calculate(path, mode, mods, counts, combo, legacy_total_score):
    beatmap = rosu.Beatmap(path=str(path))
    if int(beatmap.mode) != mode:
        beatmap.convert(GAME_MODES[mode], mods)
    diff = rosu.Difficulty(mods=mods, lazer=False).calculate(beatmap)
    kwargs = dict(
        mods=mods,
        lazer=False,
        n300=counts["n300"],
        n100=counts["n100"],
        n50=counts["n50"],
        n_geki=counts["ngeki"],
        n_katu=counts["nkatu"],
        misses=counts["nmiss"],
        combo=combo,
    )
    if legacy_total_score is not None:
        kwargs["legacy_total_score"] = legacy_total_score
    perf = rosu.Performance(**kwargs).calculate(diff)
    return diff.stars, diff.max_combo, perf.pp


def cases():
    for path in sorted(MAPS.glob("*.osu")):
        own_mode = int(rosu.Beatmap(path=str(path)).mode)
        modes = [own_mode] + ([1, 2, 3] if own_mode == 0 else [])
        for mode in modes:
            mod_list = MODS + (CONVERT_TO_MANIA_MODS[1:] if own_mode == 0 and mode == 3 else [])
            for mods in mod_list:
                beatmap = rosu.Beatmap(path=str(path))
                if own_mode != mode:
                    beatmap.convert(GAME_MODES[mode], mods)
                diff = rosu.Difficulty(mods=mods, lazer=False).calculate(beatmap)
                fc = rosu.Performance(mods=mods, lazer=False).calculate(diff).state
                fc_counts = dict(n300=fc.n300, n100=fc.n100, n50=fc.n50, ngeki=fc.n_geki, nkatu=fc.n_katu, nmiss=fc.misses)
                plays = [(fc_counts, fc.max_combo, None)]
                counts, combo = degraded(mode, fc, fc.max_combo)
                plays.append((counts, combo, None))
                if mode == 0:
                    plays.append((counts, combo, 1_234_567))
                for counts, combo, legacy in plays:
                    stars, max_combo, pp = calculate(path, mode, mods, counts, combo, legacy)
                    yield dict(
                        map=path.name,
                        mode=mode,
                        mods=mods,
                        **counts,
                        combo=combo,
                        legacy_total_score=legacy,
                        stars=stars,
                        max_combo=max_combo,
                        pp=pp,
                    )


def main():
    out = {
        "generator": "crates/scores/tests/golden/pp_vectors.py",
        "rosu_pp_py": version("rosu-pp-py"),
        "cases": list(cases()),
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
