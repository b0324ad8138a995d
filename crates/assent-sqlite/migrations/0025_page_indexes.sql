-- The reviews page's "To decide (N)" counts a tenant's open reviews in SQL, across pages.
CREATE INDEX reviews_open ON reviews(tenant_id) WHERE decision IS NULL;
-- The campaign runner and the preview walk a tenant's unsold estimates a page at a time
-- in id order.
CREATE INDEX estimates_unsold_page ON estimates(tenant_id, id) WHERE status = 'unsold';
