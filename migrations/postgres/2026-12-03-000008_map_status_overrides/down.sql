DROP TABLE beatmap_status_overrides;
