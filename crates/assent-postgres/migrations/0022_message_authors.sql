-- Who wrote a message sent from the web app (a reply in a conversation): the user's id.
-- Messages sent any other way (the API, campaigns, automatic replies) have no row.
CREATE TABLE message_authors (
    tenant_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, message_id)
);
