-- Failed sign-ins and lockouts of a tenant's accounts, for its Settings page: when, the
-- email masked, and whether the account was locked. Only the last 100 per tenant are kept.
CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    at BIGINT NOT NULL,
    email TEXT NOT NULL,
    locked BOOLEAN NOT NULL
);
CREATE INDEX login_failures_tenant ON login_failures(tenant_id, id);
