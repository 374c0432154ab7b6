-- pp recalculation jobs (`peace pp recalc`) and how far each got, so that a job
-- survives a crash or a restart and any node that owns a shard later carries it on.
-- Filters use sentinels rather than NULLs: -1 every mode, '' every map, 0 every player.
CREATE TABLE recalc_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    mode SMALLINT NOT NULL,
    beatmap_md5 VARCHAR(32) NOT NULL,
    user_id INTEGER NOT NULL,
    -- the newest score when the job began: later ones were computed with this formula
    max_score_id INTEGER NOT NULL,
    -- scores the job covers
    total BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    -- 0 while it runs
    finished_at BIGINT NOT NULL
);

-- One row per shard of a job: the scores of the players whose `User(id)` key hashes to
-- that shard, walked in (user_id, id) order; the cursor is the last score done.
CREATE TABLE recalc_shards (
    job_id INTEGER NOT NULL REFERENCES recalc_jobs (id),
    shard INTEGER NOT NULL,
    last_user_id INTEGER NOT NULL,
    last_score_id INTEGER NOT NULL,
    done BIGINT NOT NULL,
    finished BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, shard)
);

-- What each node did for a job: its share, and its current run (for the rate).
CREATE TABLE recalc_nodes (
    job_id INTEGER NOT NULL REFERENCES recalc_jobs (id),
    node VARCHAR(64) NOT NULL,
    done BIGINT NOT NULL,
    run_started_at BIGINT NOT NULL,
    run_done BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, node)
);

-- The recalculation walks one player's scores in id order.
CREATE INDEX scores_user_order ON scores (user_id, id);
