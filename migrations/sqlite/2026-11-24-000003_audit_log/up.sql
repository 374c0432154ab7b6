-- Every moderation action: who did what to whom, when and why.
CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    actor_id INTEGER NOT NULL REFERENCES users (id),
    -- NULL for actions without a target (a global alert)
    target_id INTEGER REFERENCES users (id),
    action VARCHAR(32) NOT NULL,
    reason VARCHAR(512) NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX audit_log_target ON audit_log (target_id);
