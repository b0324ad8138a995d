//! The lists the API and the web app page through, written once for both backends
//! ([`shared_list_sql!`] stamps out a backend's whole [`crate::ListStore`]). Every read is
//! one keyset page (see [`crate::page`]); counts stop at [`crate::page::COUNT_CAP`] + 1.

use crate::codec::{self, time};
use crate::page::Key;
use crate::shared::{LedgerRow, MessageRow};
use crate::{ConversationSummary, Direction, LedgerEntry, Message};

impl TryFrom<LedgerRow> for (Key, LedgerEntry) {
    type Error = crate::StoreError;
    fn try_from(r: LedgerRow) -> crate::Result<Self> {
        let key = Key {
            at: r.seq,
            id: String::new(),
        };
        Ok((key, r.try_into()?))
    }
}

/// A list of a tenant's messages (its newest first, a phone's thread, the Twilio list),
/// up to the tenant's id: the page's keys are read from `message_list` (`l`), which holds
/// the keys these lists filter and order by, and each message joined by its key (`m`).
/// On PostgreSQL `message_list` is a table written once per message, so the updates of a
/// message's life do not add entries to these lists' indexes (migration 0034); on SQLite
/// it is a view of `messages`.
pub const MESSAGE_LIST_FROM: &str = "SELECT m.id, m.tenant_id, m.direction, m.channel, m.from_number, m.to_number, \
     m.phone, m.body, m.kind, m.purpose, m.status, m.reason, m.provider_id, m.segments, m.priority, m.due_at, \
     m.expires_at, m.idempotency_key, m.created_at, m.updated_at, l.seq AS seq \
     FROM message_list l JOIN messages m ON m.tenant_id = l.tenant_id AND m.id = l.id WHERE l.tenant_id = ";

/// A `messages` row with its insertion order.
#[derive(sqlx::FromRow)]
pub struct SeqMessageRow {
    #[sqlx(flatten)]
    pub message: MessageRow,
    pub seq: i64,
}

impl TryFrom<SeqMessageRow> for (Key, Message) {
    type Error = crate::StoreError;
    fn try_from(r: SeqMessageRow) -> crate::Result<Self> {
        let key = Key {
            at: r.message.created_at,
            id: r.seq.to_string(),
        };
        Ok((key, r.message.try_into()?))
    }
}

/// A phone with messages: when it last had one, that message's text (and again when the
/// customer sent it) and direction, and the name of the oldest customer holding the phone.
#[derive(sqlx::FromRow)]
pub struct ConversationRow {
    pub phone: String,
    pub last_at: i64,
    /// The latest message's insertion order (SQLite's `rowid`, PostgreSQL's `seq`): the
    /// key's tie-breaker, so a page is a range of `message_list_newest`.
    pub last_seq: i64,
    pub last_inbound: Option<String>,
    pub last_body: Option<String>,
    pub last_direction: Option<Direction>,
    pub customer_name: Option<String>,
}

impl TryFrom<ConversationRow> for (Key, ConversationSummary) {
    type Error = crate::StoreError;
    fn try_from(r: ConversationRow) -> crate::Result<Self> {
        Ok((
            Key {
                at: r.last_at,
                id: r.last_seq.to_string(),
            },
            ConversationSummary {
                phone: codec::phone(&r.phone)?,
                last_at: time(r.last_at),
                last_inbound: r.last_inbound,
                last_body: r.last_body,
                last_direction: r.last_direction,
                customer_name: r.customer_name,
            },
        ))
    }
}

/// A key's tie-breaker as the number a list orders by (messages: the insertion order). A
/// key that does not hold one names no row.
pub fn numeric_id(key: &Key) -> crate::Result<i64> {
    key.id.parse().map_err(|_| crate::StoreError::NotFound)
}

/// The conversations page's statement up to its keyset condition (`WHERE 1 = 1`, to which
/// the page adds its range, order and limit). Walks `message_list` (see
/// [`MESSAGE_LIST_FROM`]); the latest message's text is read by its key. The customer's
/// name is read from the phone's contact methods first (see
/// [`crate::shared::PHONE_OWNERS_SQL`] for why `CROSS JOIN`); tests/sqlite/plans.rs in
/// assent-sqlite checks the plan.
pub const CONVERSATIONS_SQL: &str = "SELECT p.phone, p.last_at, p.last_seq, \
                       (SELECT CASE WHEN m.direction = 'inbound' THEN m.body END FROM messages m \
                        WHERE m.tenant_id = $1 AND m.id = p.last_id) AS last_inbound, \
                       (SELECT m.body FROM messages m WHERE m.tenant_id = $1 AND m.id = p.last_id) AS last_body, \
                       (SELECT m.direction FROM messages m WHERE m.tenant_id = $1 AND m.id = p.last_id) AS last_direction, \
                       (SELECT c.name FROM contact_methods cm CROSS JOIN customers c \
                        WHERE c.tenant_id = cm.tenant_id AND c.id = cm.customer_id \
                        AND cm.tenant_id = $1 AND cm.phone = p.phone \
                        ORDER BY c.created_at, c.id LIMIT 1) AS customer_name \
                     FROM (SELECT l.phone, l.id AS last_id, l.created_at AS last_at, l.seq AS last_seq FROM message_list l \
                           WHERE l.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM message_list n \
                             WHERE n.tenant_id = $1 AND n.phone = l.phone AND (n.created_at > l.created_at \
                               OR (n.created_at = l.created_at AND n.seq > l.seq)))) p WHERE 1 = 1";

/// Every list of one backend: `shared_list_sql!(sqlx::Sqlite, SqliteStore, reader,
/// "json_extract(k.state, '$.marketing')")` implements [`crate::ListStore`] for
/// `SqliteStore`, reading through its pool `reader`; the last argument reads the marketing
/// status out of a `consent k` row's JSON state (the two drivers spell that differently).
#[macro_export]
macro_rules! shared_list_sql {
    ($db:ty, $store:ty, $pool:ident, $marketing:literal) => {
        #[async_trait::async_trait]
        impl $crate::ListStore for $store {
            async fn customers_page(
                &self,
                tenant_id: &str,
                f: &$crate::page::CustomerFilter,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::Customer>> {
                use $crate::__sqlx;
                let mut sql = __sqlx_customers(
                    "SELECT id, name, address, tags, created_at FROM customers c",
                    f,
                );
                sql.seek(&["c.created_at", "c.id"], true, seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::CustomerRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                );
                query = query.bind(tenant_id);
                let (name, digits) = $crate::customer_search_patterns(&f.q);
                if !f.q.trim().is_empty() {
                    query = query.bind(name);
                    if let Some(d) = digits {
                        query = query.bind(d);
                    }
                }
                if let Some(m) = f.marketing {
                    query = query.bind(m.as_str().to_string());
                }
                if let Some(t) = &f.tag {
                    query = query.bind(t.clone());
                }
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let mut keyed = Vec::with_capacity(rows.len());
                for r in rows {
                    let key = $crate::page::Key {
                        at: r.created_at,
                        id: r.id.clone(),
                    };
                    keyed.push((key, $crate::Customer::try_from(r)?));
                }
                let mut page = $crate::page::Page::of(keyed, seek);
                if page.items.is_empty() {
                    return Ok(page);
                }
                let mut sql = $crate::page::Sql::new(
                    "SELECT customer_id, phone, job_notifications, marketing_updates \
                     FROM contact_methods WHERE tenant_id = ",
                );
                let p = sql.param();
                sql.push(&p).push(" AND");
                sql.in_list("customer_id", page.items.len());
                sql.push(" ORDER BY customer_id, position");
                let mut query = __sqlx::query_as::<_, (String, String, bool, bool)>(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                for c in &page.items {
                    query = query.bind(c.id.clone());
                }
                let phones = query.fetch_all(&self.$pool).await?;
                let index: std::collections::HashMap<String, usize> = page
                    .items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.id.clone(), i))
                    .collect();
                for (id, phone, job, marketing) in phones {
                    if let Some(&i) = index.get(&id) {
                        page.items[i].phones.push($crate::ContactMethod {
                            number: $crate::codec::phone(&phone)?,
                            job_notifications: job,
                            marketing_updates: marketing,
                        });
                    }
                }
                Ok(page)
            }

            async fn customer_count(
                &self,
                tenant_id: &str,
                f: &$crate::page::CustomerFilter,
            ) -> $crate::Result<u64> {
                use $crate::__sqlx;
                let sql = __sqlx_customers("SELECT 1 FROM customers c", f).capped_count();
                let mut query = __sqlx::query_scalar::<_, i64>(__sqlx::AssertSqlSafe(sql.text))
                    .bind(tenant_id);
                let (name, digits) = $crate::customer_search_patterns(&f.q);
                if !f.q.trim().is_empty() {
                    query = query.bind(name);
                    if let Some(d) = digits {
                        query = query.bind(d);
                    }
                }
                if let Some(m) = f.marketing {
                    query = query.bind(m.as_str().to_string());
                }
                if let Some(t) = &f.tag {
                    query = query.bind(t.clone());
                }
                let n = query
                    .bind(__sqlx_cap())
                    .fetch_one(&self.$pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn conversations_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::ConversationSummary>> {
                use $crate::__sqlx;
                // Each phone's latest message is the one no later message of that phone
                // follows: the tenant's messages are walked newest first on
                // `message_list_newest`, each checked on `message_list_phone`, until the page
                // is full (no GROUP BY over every message). Its text is looked up for the
                // page's phones only. A phone's latest message is the one it ends on, so
                // each phone appears once, at its latest message's key.
                let mut sql = $crate::page::Sql::new($crate::shared::lists::CONVERSATIONS_SQL);
                sql.param();
                // Ordered by (time, insertion order), the index's own order, so a page is a
                // range scan of `message_list_newest` however many messages share a time
                // (a campaign's fan-out writes thousands with one `created_at`). From a key,
                // the rest of its time's messages first (`created_at = t AND seq < s`), then
                // the earlier times (`created_at < t`): two ranges of the index. (SQLite
                // does not seek on a row value that ends with the `rowid`; as one
                // condition, a page deep into a tie read the tie from its top.)
                let desc = !seek.backwards;
                let (cmp, order) = if desc { ("<", "DESC") } else { (">", "ASC") };
                let ordered = format!(" ORDER BY p.last_at {order}, p.last_seq {order} LIMIT ");
                let fetch = seek.fetch();
                let mut rows = Vec::new();
                if let Some(k) = &seek.from {
                    let seq = $crate::shared::lists::numeric_id(k)?;
                    let tie = format!(
                        "{} AND p.last_at = $2 AND p.last_seq {cmp} $3{ordered}$4",
                        sql.text
                    );
                    rows = __sqlx::query_as::<_, $crate::shared::lists::ConversationRow>(
                        __sqlx::AssertSqlSafe(tie),
                    )
                    .bind(tenant_id)
                    .bind(k.at)
                    .bind(seq)
                    .bind(fetch)
                    .fetch_all(&self.$pool)
                    .await?;
                }
                let left = fetch - i64::try_from(rows.len()).unwrap_or(fetch);
                if left > 0 {
                    let (rest, at) = match &seek.from {
                        Some(k) => (
                            format!("{} AND p.last_at {cmp} $2{ordered}$3", sql.text),
                            Some(k.at),
                        ),
                        None => (format!("{}{ordered}$2", sql.text), None),
                    };
                    let mut query = __sqlx::query_as::<_, $crate::shared::lists::ConversationRow>(
                        __sqlx::AssertSqlSafe(rest),
                    )
                    .bind(tenant_id);
                    if let Some(at) = at {
                        query = query.bind(at);
                    }
                    rows.extend(query.bind(left).fetch_all(&self.$pool).await?);
                }
                let keyed = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn conversation_count(&self, tenant_id: &str) -> $crate::Result<u64> {
                use $crate::__sqlx;
                let n: i64 = __sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT DISTINCT phone FROM message_list WHERE tenant_id = $1 LIMIT $2) AS capped",
                )
                .bind(tenant_id)
                .bind(__sqlx_cap())
                .fetch_one(&self.$pool)
                .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn messages_page(
                &self,
                tenant_id: &str,
                f: &$crate::page::MessageFilter,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::Message>> {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new($crate::shared::lists::MESSAGE_LIST_FROM);
                let p = sql.param();
                sql.push(&p);
                if f.phone.is_some() {
                    sql.and_eq("l.phone");
                }
                if f.status.is_some() {
                    sql.and_eq("m.status");
                }
                if f.direction.is_some() {
                    sql.and_eq("m.direction");
                }
                if f.kind.is_some() {
                    sql.and_eq("m.kind");
                }
                // A phone's thread reads oldest first; the tenant's list newest first.
                sql.seek(&["l.created_at", "l.seq"], f.phone.is_none(), seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::lists::SeqMessageRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(p) = &f.phone {
                    query = query.bind(p.as_str().to_string());
                }
                if let Some(s) = f.status {
                    query = query.bind(s);
                }
                if let Some(d) = f.direction {
                    query = query.bind(d);
                }
                if let Some(k) = f.kind {
                    query = query.bind(k);
                }
                if let Some(k) = &seek.from {
                    query = query
                        .bind(k.at)
                        .bind($crate::shared::lists::numeric_id(k)?);
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let keyed = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn ledger_page(
                &self,
                tenant_id: &str,
                f: &$crate::page::LedgerFilter,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::LedgerEntry>> {
                use $crate::__sqlx;
                let mut sql = __sqlx_ledger("SELECT * FROM consent_ledger", f);
                sql.seek(&["seq"], false, seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::LedgerRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                );
                query = query.bind(tenant_id);
                if let Some(p) = &f.phone {
                    query = query.bind(p.as_str().to_string());
                }
                if let Some(t) = f.from {
                    query = query.bind($crate::codec::ms(t));
                }
                if let Some(t) = f.to {
                    query = query.bind($crate::codec::ms(t));
                }
                if let Some(k) = &seek.from {
                    query = query.bind(k.at);
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let keyed = rows
                    .into_iter()
                    .map(TryInto::try_into)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn ledger_count(
                &self,
                tenant_id: &str,
                f: &$crate::page::LedgerFilter,
            ) -> $crate::Result<u64> {
                use $crate::__sqlx;
                let sql = __sqlx_ledger("SELECT 1 FROM consent_ledger", f).capped_count();
                let mut query =
                    __sqlx::query_scalar::<_, i64>(__sqlx::AssertSqlSafe(sql.text)).bind(tenant_id);
                if let Some(p) = &f.phone {
                    query = query.bind(p.as_str().to_string());
                }
                if let Some(t) = f.from {
                    query = query.bind($crate::codec::ms(t));
                }
                if let Some(t) = f.to {
                    query = query.bind($crate::codec::ms(t));
                }
                let n = query.bind(__sqlx_cap()).fetch_one(&self.$pool).await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn campaigns_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<($crate::Campaign, $crate::CampaignCounts)>>
            {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new("SELECT * FROM campaigns WHERE tenant_id = $1");
                sql.param();
                sql.seek(&["created_at", "id"], true, seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::CampaignRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let mut keyed = Vec::with_capacity(rows.len());
                for r in rows {
                    let key = $crate::page::Key {
                        at: r.created_at,
                        id: r.id.clone(),
                    };
                    let c = $crate::Campaign::try_from(r)?;
                    keyed.push((key, (c, $crate::CampaignCounts::default())));
                }
                let mut page = $crate::page::Page::of(keyed, seek);
                if page.items.is_empty() {
                    return Ok(page);
                }
                // The page's campaigns' counters, read together.
                let sql = $crate::shared::campaign_counts_sql(page.items.len());
                let mut query = __sqlx::query_as::<_, $crate::shared::CountRow>(
                    __sqlx::AssertSqlSafe(sql),
                )
                .bind(tenant_id);
                for (c, _) in &page.items {
                    query = query.bind(c.id.clone());
                }
                let mut counts = $crate::shared::fold_counts(query.fetch_all(&self.$pool).await?)?;
                for (c, n) in &mut page.items {
                    *n = counts.remove(&c.id).unwrap_or_default();
                }
                Ok(page)
            }

            async fn campaign_count(&self, tenant_id: &str) -> $crate::Result<u64> {
                __sqlx_count(&self.$pool, "campaigns", tenant_id).await
            }

            async fn reviews_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::Review>> {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new("SELECT * FROM reviews WHERE tenant_id = $1");
                sql.param();
                sql.seek(&["created_at", "id"], false, seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::ReviewRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let mut keyed = Vec::with_capacity(rows.len());
                for r in rows {
                    let key = $crate::page::Key {
                        at: r.created_at,
                        id: r.id.clone(),
                    };
                    keyed.push((key, $crate::Review::try_from(r)?));
                }
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn review_count(&self, tenant_id: &str) -> $crate::Result<u64> {
                __sqlx_count(&self.$pool, "reviews", tenant_id).await
            }

            async fn open_review_count(&self, tenant_id: &str) -> $crate::Result<u64> {
                use $crate::__sqlx;
                // On `reviews_open (tenant_id) WHERE decision IS NULL`.
                let n: i64 = __sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM reviews WHERE tenant_id = $1 \
                     AND decision IS NULL LIMIT $2) AS capped",
                )
                .bind(tenant_id)
                .bind(__sqlx_cap())
                .fetch_one(&self.$pool)
                .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }

        /// A customer list's `FROM … WHERE`: the tenant ($1), then the search's name and
        /// (with three digits or more) phone patterns, then the marketing status and the tag
        /// when given.
        fn __sqlx_customers(select: &str, f: &$crate::page::CustomerFilter) -> $crate::page::Sql {
            let q = f.q.as_str();
            let mut sql = $crate::page::Sql::new(select);
            let p = sql.param();
            sql.push(&format!(" WHERE c.tenant_id = {p}"));
            if !q.trim().is_empty() {
                let name = sql.param();
                let (_, digits) = $crate::customer_search_patterns(q);
                let phone = match digits {
                    Some(_) => {
                        let d = sql.param();
                        format!(
                            " OR EXISTS (SELECT 1 FROM contact_methods m WHERE m.tenant_id = c.tenant_id \
                             AND m.customer_id = c.id AND m.phone LIKE {d})"
                        )
                    }
                    None => String::new(),
                };
                sql.push(&format!(
                    " AND (lower(c.name) LIKE {name} ESCAPE '\\'{phone})"
                ));
            }
            if f.marketing.is_some() {
                let m = sql.param();
                sql.push(&format!(
                    concat!(
                        " AND EXISTS (SELECT 1 FROM contact_methods cm LEFT JOIN consent k \
                         ON k.tenant_id = cm.tenant_id AND k.phone = cm.phone \
                         WHERE cm.tenant_id = c.tenant_id AND cm.customer_id = c.id \
                         AND COALESCE(",
                        $marketing,
                        ", 'none') = {}"
                    ),
                    m
                ));
                sql.push(")");
            }
            if f.tag.is_some() {
                let t = sql.param();
                sql.push(&format!(
                    " AND EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.tenant_id = c.tenant_id \
                     AND ct.customer_id = c.id AND ct.tag = {t})"
                ));
            }
            sql
        }

        /// A ledger list's `FROM … WHERE`: the tenant ($1), then the phone, from and to
        /// when given.
        fn __sqlx_ledger(select: &str, f: &$crate::page::LedgerFilter) -> $crate::page::Sql {
            let mut sql = $crate::page::Sql::new(select);
            let p = sql.param();
            sql.push(&format!(" WHERE tenant_id = {p}"));
            if f.phone.is_some() {
                sql.and_eq("phone");
            }
            if f.from.is_some() {
                let p = sql.param();
                sql.push(&format!(" AND occurred_at >= {p}"));
            }
            if f.to.is_some() {
                let p = sql.param();
                sql.push(&format!(" AND occurred_at < {p}"));
            }
            sql
        }

        fn __sqlx_cap() -> i64 {
            i64::try_from($crate::page::COUNT_CAP).unwrap_or(i64::MAX - 1) + 1
        }

        /// A tenant's rows of `table`, counted up to the cap.
        async fn __sqlx_count(
            pool: &$crate::__sqlx::Pool<$db>,
            table: &'static str,
            tenant_id: &str,
        ) -> $crate::Result<u64> {
            use $crate::__sqlx;
            let sql = format!(
                "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE tenant_id = $1 LIMIT $2) AS capped"
            );
            let n: i64 = __sqlx::query_scalar(__sqlx::AssertSqlSafe(sql))
                .bind(tenant_id)
                .bind(__sqlx_cap())
                .fetch_one(pool)
                .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        }
    };
}
