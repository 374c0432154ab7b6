-- Scores of the stable client, the beatmaps they are played on, and what a player's
-- statistics add up from them.

-- Every beatmap a source (the local import, an osu!api mirror) told us about, keyed by
-- the md5 of its .osu file: the client names maps by md5.
CREATE TABLE beatmaps (
    md5 CHAR(32) PRIMARY KEY NOT NULL,
    -- osu!'s beatmap and set ids; 0 when a locally imported map has none
    id INTEGER NOT NULL,
    set_id INTEGER NOT NULL,
    -- osu!api v1 `approved`: -2 graveyard, -1 WIP, 0 pending, 1 ranked, 2 approved,
    -- 3 qualified, 4 loved
    status SMALLINT NOT NULL,
    -- staff set the status by hand: a source's answer does not overwrite it
    status_frozen BOOLEAN NOT NULL,
    mode SMALLINT NOT NULL,
    artist VARCHAR(256) NOT NULL,
    title VARCHAR(256) NOT NULL,
    version VARCHAR(256) NOT NULL,
    creator VARCHAR(64) NOT NULL,
    -- the name the client gives the .osu file: 'Artist - Title (Creator) [Version].osu'
    file_name VARCHAR(512) NOT NULL,
    -- seconds
    total_length INTEGER NOT NULL,
    max_combo INTEGER NOT NULL,
    -- star rating without mods, in the map's own mode
    stars REAL NOT NULL,
    plays INTEGER NOT NULL,
    passes INTEGER NOT NULL,
    -- where the row came from: 0 local import, 1 osu!api v1 source, 2 osu!api v2
    source SMALLINT NOT NULL,
    approved_at BIGINT NOT NULL,
    -- when a source last confirmed the row
    fetched_at BIGINT NOT NULL
);
CREATE INDEX beatmaps_id ON beatmaps (id);
CREATE INDEX beatmaps_set ON beatmaps (set_id);
CREATE INDEX beatmaps_file_name ON beatmaps (file_name);

-- Lookups no source could answer ('md5:<md5>', 'id:<id>', 'set:<id>'), so that an
-- unknown map is not asked of every source on every request.
CREATE TABLE beatmap_misses (
    lookup VARCHAR(64) PRIMARY KEY NOT NULL,
    checked_at BIGINT NOT NULL
);

CREATE TABLE scores (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id),
    beatmap_md5 CHAR(32) NOT NULL,
    -- 0 osu!, 1 taiko, 2 catch, 3 mania
    mode SMALLINT NOT NULL,
    -- the leaderboard it counts on: 0 vanilla, 1 relax, 2 autopilot
    board SMALLINT NOT NULL,
    score BIGINT NOT NULL,
    pp REAL NOT NULL,
    -- percent, 0 to 100
    accuracy REAL NOT NULL,
    max_combo INTEGER NOT NULL,
    mods INTEGER NOT NULL,
    count_300 INTEGER NOT NULL,
    count_100 INTEGER NOT NULL,
    count_50 INTEGER NOT NULL,
    count_geki INTEGER NOT NULL,
    count_katu INTEGER NOT NULL,
    count_miss INTEGER NOT NULL,
    grade VARCHAR(2) NOT NULL,
    perfect BOOLEAN NOT NULL,
    -- 0 failed or quit, 1 passed, 2 the player's best on this map, mode and board
    status SMALLINT NOT NULL,
    -- the client's checksum of the play: a resent submission has the same one
    online_checksum CHAR(32) NOT NULL UNIQUE,
    -- milliseconds the player spent in the play
    play_time INTEGER NOT NULL,
    -- the anti-cheat flags the client appends to its version string
    client_flags INTEGER NOT NULL,
    replay_views INTEGER NOT NULL,
    submitted_at BIGINT NOT NULL,
    -- the text this submission was answered with, sent again to a resent submission
    reply VARCHAR(4096) NOT NULL
);
CREATE INDEX scores_board ON scores (beatmap_md5, mode, board, status);
CREATE INDEX scores_player ON scores (user_id, mode, board, status);

-- stats rows are per (user, mode + 4 · board): 0-3 vanilla, 4-7 relax, 8-11 autopilot.
ALTER TABLE stats ADD COLUMN xh_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stats ADD COLUMN x_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stats ADD COLUMN sh_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stats ADD COLUMN s_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stats ADD COLUMN a_count INTEGER NOT NULL DEFAULT 0;
