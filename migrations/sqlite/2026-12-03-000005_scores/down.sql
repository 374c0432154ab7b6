DROP TABLE scores;
DROP TABLE beatmap_misses;
DROP TABLE beatmaps;
ALTER TABLE stats DROP COLUMN a_count;
ALTER TABLE stats DROP COLUMN s_count;
ALTER TABLE stats DROP COLUMN sh_count;
ALTER TABLE stats DROP COLUMN x_count;
ALTER TABLE stats DROP COLUMN xh_count;
