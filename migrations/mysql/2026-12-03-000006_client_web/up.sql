-- What the stable client reports and asks for besides playing: map ratings,
-- favourite sets, in-song comments, and its own reports (anti-cheat flags, errors).

-- One rating (1-10) per player and map; the key makes a second vote a conflict, even
-- when two arrive at once.
CREATE TABLE beatmap_ratings (
    user_id INTEGER NOT NULL,
    beatmap_md5 CHAR(32) NOT NULL,
    rating SMALLINT NOT NULL,
    rated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, beatmap_md5),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX beatmap_ratings_map ON beatmap_ratings (beatmap_md5);

-- A player's favourite beatmap sets.
CREATE TABLE favourites (
    user_id INTEGER NOT NULL,
    set_id INTEGER NOT NULL,
    added_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, set_id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Comments shown while a map or replay plays, at their time in the song.
CREATE TABLE comments (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    -- what it is about: 0 the beatmap set ('song'), 1 the map, 2 a replay (a score)
    target_kind SMALLINT NOT NULL,
    target_id INTEGER NOT NULL,
    -- milliseconds into the song
    song_time INTEGER NOT NULL,
    -- a supporter's colour, 'rrggbb', or empty
    colour VARCHAR(6) NOT NULL,
    body VARCHAR(128) NOT NULL,
    posted_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX comments_target ON comments (target_kind, target_id);

-- What clients report about themselves: anti-cheat flags (lastfm.php, kind 0) and
-- error reports (osu-error.php, kind 1, user NULL when the report named no valid login).
CREATE TABLE client_reports (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id INTEGER,
    kind SMALLINT NOT NULL,
    flags INTEGER NOT NULL,
    client_version VARCHAR(64) NOT NULL,
    detail VARCHAR(4096) NOT NULL,
    reported_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX client_reports_user ON client_reports (user_id);
