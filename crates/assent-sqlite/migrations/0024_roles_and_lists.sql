-- Who may change what in the web app: an owner also manages the team, registrations,
-- sending numbers and settings; a marketer works with customers and campaigns. Every user
-- made before roles existed is an owner. A disabled user cannot sign in.
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'owner';
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;

-- The web app's paged lists of estimates, recurring services and calls, newest first.
CREATE INDEX estimates_created ON estimates(tenant_id, created_at, id);
CREATE INDEX recurring_services_created ON recurring_services(tenant_id, created_at, id);
CREATE INDEX calls_at ON calls(tenant_id, at, id);
