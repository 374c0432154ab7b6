-- Peace's initial schema, MySQL/MariaDB dialect of migrations/sqlite (same tables,
-- columns and seeds; tests compare the three). Timestamps are unix seconds in BIGINT
-- columns so that the three backends share one representation.
--
-- Every table is InnoDB (transactions, foreign keys) in utf8mb4 (all of Unicode, not
-- MySQL's three-byte "utf8") with the binary collation: comparisons are byte-exact as on
-- SQLite and PostgreSQL. The default collation would also make 'é' equal 'e', so two
-- different names could collide on MySQL only; case-insensitivity comes from `safe_name`.
-- Foreign keys are written as table constraints: MySQL ignores a column's REFERENCES.

CREATE TABLE users (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(32) NOT NULL,
    -- lower-case, spaces as underscores: the unique, case-insensitive key
    safe_name VARCHAR(32) NOT NULL UNIQUE,
    -- stored lower-case
    email VARCHAR(254) NOT NULL UNIQUE,
    -- bcrypt(md5(password))
    password_bcrypt VARCHAR(60) NOT NULL,
    privileges INTEGER NOT NULL DEFAULT 1,
    country CHAR(2) NOT NULL DEFAULT 'XX',
    silence_end BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE stats (
    user_id INTEGER NOT NULL,
    mode SMALLINT NOT NULL,
    total_score BIGINT NOT NULL DEFAULT 0,
    ranked_score BIGINT NOT NULL DEFAULT 0,
    pp INTEGER NOT NULL DEFAULT 0,
    -- FLOAT, not REAL: MySQL's REAL is an eight-byte DOUBLE
    accuracy FLOAT NOT NULL DEFAULT 0,
    playcount INTEGER NOT NULL DEFAULT 0,
    playtime INTEGER NOT NULL DEFAULT 0,
    max_combo INTEGER NOT NULL DEFAULT 0,
    total_hits INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, mode),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX stats_mode_pp ON stats (mode, pp);

-- kind: 0 = friend, 1 = block
CREATE TABLE relationships (
    user_id INTEGER NOT NULL,
    target_id INTEGER NOT NULL,
    kind SMALLINT NOT NULL,
    PRIMARY KEY (user_id, target_id),
    FOREIGN KEY (user_id) REFERENCES users (id),
    FOREIGN KEY (target_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE channels (
    name VARCHAR(32) PRIMARY KEY NOT NULL,
    topic VARCHAR(256) NOT NULL,
    -- privilege bits a user needs (0 = anyone)
    read_privileges INTEGER NOT NULL DEFAULT 0,
    write_privileges INTEGER NOT NULL DEFAULT 0,
    auto_join BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- private messages to users who were offline, delivered at their next login
CREATE TABLE mail (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    from_id INTEGER NOT NULL,
    to_id INTEGER NOT NULL,
    body VARCHAR(2048) NOT NULL,
    sent_at BIGINT NOT NULL,
    delivered BOOLEAN NOT NULL DEFAULT FALSE,
    FOREIGN KEY (from_id) REFERENCES users (id),
    FOREIGN KEY (to_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX mail_inbox ON mail (to_id, delivered);

CREATE TABLE logins (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id INTEGER NOT NULL,
    ip VARCHAR(45) NOT NULL,
    client_version VARCHAR(64) NOT NULL,
    client_hashes VARCHAR(1024) NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX logins_user ON logins (user_id);

-- The bot (id 1). Its password hash is not a bcrypt hash, so no password logs in as it.
-- privileges = NORMAL | VERIFIED | BOT. The explicit id moves AUTO_INCREMENT past it.
INSERT INTO users (id, name, safe_name, email, password_bcrypt, privileges, country, created_at, last_seen)
VALUES (1, 'Peace', 'peace', 'bot@peace.invalid', '!', 131, 'XX', 0, 0);
INSERT INTO stats (user_id, mode) VALUES (1, 0), (1, 1), (1, 2), (1, 3);

-- Default channels. #announce is written by administrators only (privilege 16).
INSERT INTO channels (name, topic, read_privileges, write_privileges, auto_join) VALUES
    ('#osu', 'General discussion.', 0, 0, TRUE),
    ('#announce', 'Announcements from the staff.', 0, 16, TRUE),
    ('#lobby', 'Multiplayer lobby discussion.', 0, 0, FALSE),
    ('#help', 'Ask for help here.', 0, 0, FALSE);
