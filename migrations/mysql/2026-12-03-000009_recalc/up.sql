-- pp recalculation jobs (`peace pp recalc`) and how far each got, so that a job
-- survives a crash or a restart and any node that owns a shard later carries it on.
-- Filters use sentinels rather than NULLs: -1 every mode, '' every map, 0 every player.
-- Table options as in the initial migration (InnoDB, utf8mb4, binary collation).
CREATE TABLE recalc_jobs (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
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
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- One row per shard of a job: the scores of the players whose `User(id)` key hashes to
-- that shard, walked in (user_id, id) order; the cursor is the last score done.
CREATE TABLE recalc_shards (
    job_id INTEGER NOT NULL,
    shard INTEGER NOT NULL,
    last_user_id INTEGER NOT NULL,
    last_score_id INTEGER NOT NULL,
    done BIGINT NOT NULL,
    finished BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, shard),
    FOREIGN KEY (job_id) REFERENCES recalc_jobs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- What each node did for a job: its share, and its current run (for the rate).
CREATE TABLE recalc_nodes (
    job_id INTEGER NOT NULL,
    node VARCHAR(64) NOT NULL,
    done BIGINT NOT NULL,
    run_started_at BIGINT NOT NULL,
    run_done BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, node),
    FOREIGN KEY (job_id) REFERENCES recalc_jobs (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The recalculation walks one player's scores in id order.
CREATE INDEX scores_user_order ON scores (user_id, id);
