DROP TABLE scores;
DROP TABLE beatmap_misses;
DROP TABLE beatmaps;
ALTER TABLE stats DROP COLUMN a_count, DROP COLUMN s_count, DROP COLUMN sh_count, DROP COLUMN x_count, DROP COLUMN xh_count;
