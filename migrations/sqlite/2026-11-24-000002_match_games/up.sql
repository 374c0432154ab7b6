-- Finished (or aborted) multiplayer games and each player's final score.

CREATE TABLE match_games (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
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
);

CREATE TABLE match_scores (
    game_id INTEGER NOT NULL REFERENCES match_games (id),
    user_id INTEGER NOT NULL REFERENCES users (id),
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
    PRIMARY KEY (game_id, user_id)
);
