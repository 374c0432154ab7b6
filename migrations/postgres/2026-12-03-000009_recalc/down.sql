DROP INDEX scores_user_order;
DROP TABLE recalc_nodes;
DROP TABLE recalc_shards;
DROP TABLE recalc_jobs;
