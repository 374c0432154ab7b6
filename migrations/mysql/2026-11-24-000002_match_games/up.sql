-- Finished (or aborted) multiplayer games and each player's final score.
-- Table options as in the initial migration (InnoDB, utf8mb4, binary collation).

CREATE TABLE match_games (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- the in-memory match id (1..65535, reused over time)
    match_id INTEGER NOT NULL,
    match_name VARCHAR(64) NOT NULL,
    beatmap_id INTEGER NOT NULL,
    beatmap_md5 VARCHAR(32) NOT NULL,
    beatmap_name VARCHAR(256) NOT NULL,
    mode SMALLINT NOT NULL,
    mods INTEGER NOT NULL,
    win_condition SMALLINT NOT NULL,
    team_type SMALLINT NOT NULL,
    freemod BOOLEAN NOT NULL,
    aborted BOOLEAN NOT NULL,
    started_at BIGINT NOT NULL,
    ended_at BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE match_scores (
    game_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    slot SMALLINT NOT NULL,
    team SMALLINT NOT NULL,
    mods INTEGER NOT NULL,
    score INTEGER NOT NULL,
    max_combo INTEGER NOT NULL,
    count_300 INTEGER NOT NULL,
    count_100 INTEGER NOT NULL,
    count_50 INTEGER NOT NULL,
    count_geki INTEGER NOT NULL,
    count_katu INTEGER NOT NULL,
    count_miss INTEGER NOT NULL,
    passed BOOLEAN NOT NULL,
    PRIMARY KEY (game_id, user_id),
    FOREIGN KEY (game_id) REFERENCES match_games (id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
