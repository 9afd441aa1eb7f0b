-- The audit trail: one row per operator action (admin API or CLI), never a secret.
CREATE TABLE admin_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    details TEXT NOT NULL
);

CREATE INDEX admin_audit_at ON admin_audit (at, id);
