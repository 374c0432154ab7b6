-- The record of each logged-in player's main session, from which another node rebuilds
-- the session when the node that held it died. Written at login (a new login replaces
-- the user's record), deleted when the session ends for real, refreshed while it lives.
-- No index on refreshed_at: the table holds one row per online player, and an index
-- would be rewritten by every refresh to speed up only the occasional prune.
CREATE TABLE sessions (
    user_id INTEGER NOT NULL PRIMARY KEY REFERENCES users (id),
    -- the session's random u64, stored bit for bit as a signed 64-bit integer
    session_id BIGINT NOT NULL,
    -- hours from UTC, as the client reported it at login
    utc_offset SMALLINT NOT NULL,
    block_non_friend_dms BOOLEAN NOT NULL,
    -- the channels the session is in, comma-separated ('#osu,#lobby')
    channels VARCHAR(1024) NOT NULL,
    created_at BIGINT NOT NULL,
    refreshed_at BIGINT NOT NULL
);
