-- Every moderation action: who did what to whom, when and why.
CREATE TABLE audit_log (
    id INTEGER NOT NULL AUTO_INCREMENT PRIMARY KEY,
    actor_id INTEGER NOT NULL,
    -- NULL for actions without a target (a global alert)
    target_id INTEGER,
    action VARCHAR(32) NOT NULL,
    reason VARCHAR(512) NOT NULL,
    created_at BIGINT NOT NULL,
    FOREIGN KEY (actor_id) REFERENCES users (id),
    FOREIGN KEY (target_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
CREATE INDEX audit_log_target ON audit_log (target_id);
