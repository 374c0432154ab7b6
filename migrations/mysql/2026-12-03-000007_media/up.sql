-- Screenshots uploaded by the client (osu-screenshot.php). The image itself is in the
-- object store under `screenshots/<id>.<format>`; this is who sent it and when.
-- Avatars need no table: one object per user, `avatars/<user id>.png`.
CREATE TABLE screenshots (
    -- random, so that ids cannot be walked
    id VARCHAR(16) NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    -- 'png' or 'jpg'
    format VARCHAR(4) NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX screenshots_user ON screenshots (user_id);
