DROP INDEX scores_user_order ON scores;
DROP TABLE recalc_nodes;
DROP TABLE recalc_shards;
DROP TABLE recalc_jobs;
