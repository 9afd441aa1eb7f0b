-- The audit trail: one row per operator action (admin API or CLI), never a secret.
CREATE TABLE admin_audit (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    details text NOT NULL
);

CREATE INDEX admin_audit_at ON admin_audit (at, id);
