-- Ranked statuses staff gave by hand (`!map`, the admin API), to one map or a whole set.
-- The beatmaps rows carry the status as well; this table is what every later answer of
-- a source (a refresh, a new difficulty of the set, a new version of the map) is checked
-- against, so that an override outlives every re-fetch.
CREATE TABLE beatmap_status_overrides (
    -- 0: one map (target_id is its osu! beatmap id); 1: a whole set (its set id)
    scope SMALLINT NOT NULL,
    target_id INTEGER NOT NULL,
    -- osu!api v1 `approved`, as in beatmaps.status
    status SMALLINT NOT NULL,
    set_by INTEGER NOT NULL REFERENCES users (id),
    set_at BIGINT NOT NULL,
    PRIMARY KEY (scope, target_id)
);
