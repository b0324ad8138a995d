//! Twilio-compatible sending and the outbox, written once for both backends
//! ([`shared_relay_sql!`] stamps out the functions a backend's [`crate::RelayStore`] calls).
//!
//! A status callback's delivery is written by the database itself: a trigger on `messages`
//! (migration `twilio_compatible`) adds an outbox row in the same transaction as every status
//! change of a message that has a `status_callbacks` row, whichever code path changed it.

use crate::codec::time;
use crate::{Delivery, OutboxItem, TwilioAccount, WebhookEndpoint};

/// A `twilio_accounts` row.
#[derive(sqlx::FromRow)]
pub struct TwilioAccountRow {
    pub tenant_id: String,
    pub account_sid: String,
    pub auth_token: Option<String>,
}

impl From<TwilioAccountRow> for TwilioAccount {
    fn from(r: TwilioAccountRow) -> Self {
        TwilioAccount {
            tenant_id: r.tenant_id,
            account_sid: r.account_sid,
            auth_token: r.auth_token,
        }
    }
}

/// An `outbox` row.
#[derive(sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: String,
    pub tenant_id: String,
    pub kind: String,
    pub endpoint_id: Option<String>,
    pub url: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: i64,
}

impl From<OutboxRow> for OutboxItem {
    fn from(r: OutboxRow) -> Self {
        OutboxItem {
            id: r.id,
            event_id: r.event_id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            endpoint_id: r.endpoint_id,
            url: r.url,
            body: r.body,
            attempts: u32::try_from(r.attempts.max(0)).unwrap_or(u32::MAX),
            created_at: time(r.created_at),
        }
    }
}

/// A `webhook_endpoints` row.
#[derive(sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    pub secret: String,
    pub on_consent_changed: bool,
    pub on_message_status: bool,
    pub on_review_opened: bool,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
}

impl From<EndpointRow> for WebhookEndpoint {
    fn from(r: EndpointRow) -> Self {
        let events = [
            (r.on_consent_changed, "consent.changed"),
            (r.on_message_status, "message.status"),
            (r.on_review_opened, "review.opened"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, e)| e.to_string())
        .collect();
        WebhookEndpoint {
            id: r.id,
            tenant_id: r.tenant_id,
            url: r.url,
            secret: r.secret,
            events,
            created_at: time(r.created_at),
            deleted_at: r.deleted_at.map(time),
        }
    }
}

/// An `outbox` row as an endpoint's delivery log shows it.
#[derive(sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub body: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub given_up_at: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        let event_type = serde_json::from_str::<serde_json::Value>(&r.body)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        Delivery {
            id: r.id,
            event_id: r.event_id,
            event_type,
            attempts: u32::try_from(r.attempts.max(0)).unwrap_or(u32::MAX),
            next_attempt_at: time(r.next_attempt_at),
            delivered_at: r.delivered_at.map(time),
            given_up_at: r.given_up_at.map(time),
            last_error: r.last_error,
            created_at: time(r.created_at),
        }
    }
}

/// [`crate::RelayStore`] for one driver and the backend's store:
/// `shared_relay_sql!(sqlx::Sqlite, crate::SqliteStore, reader)`; the last two are as in
/// [`crate::shared_web_sql!`].
#[macro_export]
macro_rules! shared_relay_sql {
    ($db:ty, $store:ty, $read:ident) => {
        use $crate::__sqlx;
        use $crate::__chrono::{DateTime, Utc};

        #[async_trait::async_trait]
        impl $crate::RelayStore for $store {
            async fn twilio_account(
                &self,
                tenant_id: &str,
            ) -> $crate::Result<Option<$crate::TwilioAccount>> {
                twilio_account(&self.$read, tenant_id).await
            }

            async fn set_twilio_auth_token(&self, tenant_id: &str, token: &str) -> $crate::Result<()> {
                let mut w = self.write().await?;
                set_twilio_auth_token(w.conn(), tenant_id, token).await?;
                w.commit().await
            }

            async fn set_status_callback(
                &self,
                tenant_id: &str,
                message_id: &str,
                url: &str,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                set_status_callback(w.conn(), tenant_id, message_id, url).await?;
                w.commit().await
            }

            async fn forget_status_callback(
                &self,
                tenant_id: &str,
                message_id: &str,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                forget_status_callback(w.conn(), tenant_id, message_id).await?;
                w.commit().await
            }

            async fn twilio_messages(
                &self,
                tenant_id: &str,
                filter: &$crate::TwilioMessageFilter,
            ) -> $crate::Result<(Vec<$crate::Message>, Option<$crate::page::Key>)> {
                twilio_messages(&self.$read, tenant_id, filter).await
            }

            async fn claim_outbox(
                &self,
                now: DateTime<Utc>,
                lease_until: DateTime<Utc>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::OutboxItem>> {
                let mut w = self.write().await?;
                let items = claim_outbox(w.conn(), now, lease_until, limit).await?;
                w.commit().await?;
                Ok(items)
            }

            async fn outbox_delivered(
                &self,
                tenant_id: &str,
                id: i64,
                now: DateTime<Utc>,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                outbox_delivered(w.conn(), tenant_id, id, now).await?;
                w.commit().await
            }

            async fn outbox_failed(
                &self,
                tenant_id: &str,
                id: i64,
                error: &str,
                retry_at: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                outbox_failed(w.conn(), tenant_id, id, error, retry_at, now).await?;
                w.commit().await
            }

            async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> $crate::Result<u64> {
                let mut w = self.write().await?;
                let n = prune_outbox(w.conn(), before, limit).await?;
                w.commit().await?;
                Ok(n)
            }

            async fn create_webhook_endpoint(
                &self,
                endpoint: &$crate::WebhookEndpoint,
            ) -> $crate::Result<()> {
                let mut w = self.write().await?;
                create_webhook_endpoint(w.conn(), endpoint).await?;
                w.commit().await
            }

            async fn webhook_endpoint(
                &self,
                tenant_id: &str,
                id: &str,
            ) -> $crate::Result<Option<$crate::WebhookEndpoint>> {
                webhook_endpoint(&self.$read, tenant_id, id).await
            }

            async fn webhook_endpoints(
                &self,
                tenant_id: &str,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::WebhookEndpoint>> {
                webhook_endpoints(&self.$read, tenant_id, after, limit).await
            }

            async fn delete_webhook_endpoint(
                &self,
                tenant_id: &str,
                id: &str,
                now: DateTime<Utc>,
            ) -> $crate::Result<bool> {
                let mut w = self.write().await?;
                let done = delete_webhook_endpoint(w.conn(), tenant_id, id, now).await?;
                w.commit().await?;
                Ok(done)
            }

            async fn deliveries(
                &self,
                tenant_id: &str,
                endpoint_id: &str,
                before: Option<i64>,
                limit: u32,
            ) -> $crate::Result<Vec<$crate::Delivery>> {
                deliveries(&self.$read, tenant_id, endpoint_id, before, limit).await
            }

            async fn resend_delivery(
                &self,
                tenant_id: &str,
                endpoint_id: &str,
                id: i64,
                now: DateTime<Utc>,
            ) -> $crate::Result<bool> {
                let mut w = self.write().await?;
                let done = resend_delivery(w.conn(), tenant_id, endpoint_id, id, now).await?;
                w.commit().await?;
                Ok(done)
            }
        }

        pub(crate) async fn create_twilio_account<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            account_sid: &str,
        ) -> $crate::Result<()> {
            __sqlx::query("INSERT INTO twilio_accounts (tenant_id, account_sid) VALUES ($1, $2)")
                .bind(tenant_id)
                .bind(account_sid)
                .execute(e)
                .await?;
            Ok(())
        }

        pub(crate) async fn twilio_account<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
        ) -> $crate::Result<Option<$crate::TwilioAccount>> {
            let row: Option<$crate::shared::relay::TwilioAccountRow> =
                __sqlx::query_as("SELECT * FROM twilio_accounts WHERE tenant_id = $1")
                    .bind(tenant_id)
                    .fetch_optional(e)
                    .await?;
            Ok(row.map(Into::into))
        }

        pub(crate) async fn set_twilio_auth_token<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            token: &str,
        ) -> $crate::Result<()> {
            __sqlx::query("UPDATE twilio_accounts SET auth_token = $1 WHERE tenant_id = $2")
                .bind(token)
                .bind(tenant_id)
                .execute(e)
                .await?;
            Ok(())
        }

        pub(crate) async fn set_status_callback<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            message_id: &str,
            url: &str,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "INSERT INTO status_callbacks (tenant_id, message_id, url) VALUES ($1, $2, $3)",
            )
            .bind(tenant_id)
            .bind(message_id)
            .bind(url)
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn forget_status_callback<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            message_id: &str,
        ) -> $crate::Result<()> {
            __sqlx::query("DELETE FROM status_callbacks WHERE tenant_id = $1 AND message_id = $2")
                .bind(tenant_id)
                .bind(message_id)
                .execute(e)
                .await?;
            Ok(())
        }

        /// Newest first by (`created_at`, insertion order), a keyset page at a time. Only
        /// the filters given are in the SQL (no `$n IS NULL OR …`), so each query reads the
        /// index of its filter in the list's order, without sorting: `message_list_to`,
        /// `message_list_from`, or `message_list_newest` (also for `DateSent`).
        pub(crate) async fn twilio_messages<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            f: &$crate::TwilioMessageFilter,
        ) -> $crate::Result<(Vec<$crate::Message>, Option<$crate::page::Key>)> {
            use $crate::codec::ms;
            let mut sql = $crate::page::Sql::new($crate::shared::lists::MESSAGE_LIST_FROM);
            let p = sql.param();
            sql.push(&p);
            if f.to.is_some() {
                sql.and_eq("l.to_number");
            }
            if f.from.is_some() {
                sql.and_eq("l.from_number");
            }
            if f.sent_from.is_some() {
                let p = sql.param();
                sql.push(&format!(" AND l.created_at >= {p}"));
            }
            if f.sent_before.is_some() {
                let p = sql.param();
                sql.push(&format!(" AND l.created_at < {p}"));
            }
            let limit = usize::try_from(f.limit.clamp(1, 1000)).unwrap_or(1000);
            let seek = $crate::page::Seek::after(f.after.clone(), limit);
            sql.seek(&["l.created_at", "l.seq"], true, &seek);
            let mut q = __sqlx::query_as::<_, $crate::shared::lists::SeqMessageRow>(
                __sqlx::AssertSqlSafe(sql.text),
            )
            .bind(tenant_id.to_string());
            if let Some(p) = &f.to {
                q = q.bind(p.as_str().to_string());
            }
            if let Some(p) = &f.from {
                q = q.bind(p.as_str().to_string());
            }
            if let Some(v) = f.sent_from {
                q = q.bind(ms(v));
            }
            if let Some(v) = f.sent_before {
                q = q.bind(ms(v));
            }
            if let Some(k) = &seek.from {
                q = q.bind(k.at).bind($crate::shared::lists::numeric_id(k)?);
            }
            let rows = q.bind(seek.fetch()).fetch_all(e).await?;
            let keyed = rows
                .into_iter()
                .map(TryInto::try_into)
                .collect::<$crate::Result<Vec<_>>>()?;
            let page = $crate::page::Page::of(keyed, &seek);
            let next = page.next().cloned();
            Ok((page.items, next))
        }

        /// Takes up to `limit` due deliveries, each the earliest undelivered one of its
        /// ordering key, and pushes their next attempt to `lease_until` (another worker
        /// leaves them alone meanwhile; a crash lets them come back then).
        pub(crate) async fn claim_outbox(
            conn: &mut <$db as __sqlx::Database>::Connection,
            now: chrono::DateTime<chrono::Utc>,
            lease_until: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::OutboxItem>> {
            use $crate::codec::ms;
            let rows: Vec<$crate::shared::relay::OutboxRow> = __sqlx::query_as(
                "UPDATE outbox SET next_attempt_at = $1, attempts = attempts + 1 WHERE id IN ( \
                   SELECT o.id FROM outbox o \
                   WHERE o.delivered_at IS NULL AND o.given_up_at IS NULL AND o.next_attempt_at <= $2 \
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.ordering_key = o.ordering_key \
                     AND p.delivered_at IS NULL AND p.given_up_at IS NULL AND p.id < o.id) \
                   ORDER BY o.id LIMIT $3) \
                 RETURNING id, event_id, tenant_id, kind, endpoint_id, url, body, attempts, created_at",
            )
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
            let mut items: Vec<$crate::OutboxItem> = rows.into_iter().map(Into::into).collect();
            items.sort_by_key(|i| i.id);
            Ok(items)
        }

        pub(crate) async fn outbox_delivered<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: i64,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            __sqlx::query(
                "UPDATE outbox SET delivered_at = $1, last_error = NULL \
                 WHERE tenant_id = $2 AND id = $3",
            )
            .bind($crate::codec::ms(now))
            .bind(tenant_id)
            .bind(id)
                .execute(e)
                .await?;
            Ok(())
        }

        pub(crate) async fn outbox_failed<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: i64,
            error: &str,
            retry_at: Option<chrono::DateTime<chrono::Utc>>,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<()> {
            use $crate::codec::ms;
            __sqlx::query(
                "UPDATE outbox SET last_error = $1, \
                   next_attempt_at = COALESCE($2, next_attempt_at), \
                   given_up_at = CASE WHEN $2 IS NULL THEN $3 ELSE NULL END \
                 WHERE tenant_id = $4 AND id = $5",
            )
            .bind(error)
            .bind(retry_at.map(ms))
            .bind(ms(now))
            .bind(tenant_id)
            .bind(id)
            .execute(e)
            .await?;
            Ok(())
        }

        /// Deletes up to `limit` deliveries delivered or given up before `before` (the
        /// delivered ones first, each kind oldest first, by its partial index); returns how
        /// many went. Waiting deliveries are never touched.
        pub(crate) async fn prune_outbox(
            conn: &mut <$db as __sqlx::Database>::Connection,
            before: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> $crate::Result<u64> {
            let mut done = 0u64;
            for column in ["delivered_at", "given_up_at"] {
                let left = u64::from(limit).saturating_sub(done);
                if left == 0 {
                    break;
                }
                // The limit is written into the SQL (a number, never input): a plan made
                // for an unknown limit (PostgreSQL's generic plan) hashes the whole outbox.
                done += __sqlx::query(__sqlx::AssertSqlSafe(format!(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE {column} < $1 \
                     ORDER BY {column} LIMIT {left})"
                )))
                .bind($crate::codec::ms(before))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
            Ok(done)
        }

        pub(crate) async fn create_webhook_endpoint<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            ep: &$crate::WebhookEndpoint,
        ) -> $crate::Result<()> {
            let on = |name: &str| ep.events.iter().any(|e| e == name);
            __sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, secret, on_consent_changed, \
                 on_message_status, on_review_opened, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&ep.id)
            .bind(&ep.tenant_id)
            .bind(&ep.url)
            .bind(&ep.secret)
            .bind(on("consent.changed"))
            .bind(on("message.status"))
            .bind(on("review.opened"))
            .bind($crate::codec::ms(ep.created_at))
            .execute(e)
            .await?;
            Ok(())
        }

        pub(crate) async fn webhook_endpoint<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            id: &str,
        ) -> $crate::Result<Option<$crate::WebhookEndpoint>> {
            let row: Option<$crate::shared::relay::EndpointRow> = __sqlx::query_as(
                "SELECT * FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            )
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(e)
            .await?;
            Ok(row.map(Into::into))
        }

        /// A tenant's endpoints in creation order (id breaking ties): `limit` after `after`.
        pub(crate) async fn webhook_endpoints<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            after: Option<&str>,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::WebhookEndpoint>> {
            let rows: Vec<$crate::shared::relay::EndpointRow> = __sqlx::query_as(
                "SELECT * FROM webhook_endpoints WHERE tenant_id = $1 AND deleted_at IS NULL \
                 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
            )
            .bind(tenant_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        }

        pub(crate) async fn delete_webhook_endpoint(
            conn: &mut <$db as __sqlx::Database>::Connection,
            tenant_id: &str,
            id: &str,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<bool> {
            use $crate::codec::ms;
            let done = __sqlx::query(
                "UPDATE webhook_endpoints SET deleted_at = $1 WHERE tenant_id = $2 AND id = $3 AND deleted_at IS NULL",
            )
            .bind(ms(now))
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            // Its waiting deliveries go nowhere now.
            __sqlx::query(
                "UPDATE outbox SET given_up_at = $1, last_error = 'the endpoint was deleted' \
                 WHERE endpoint_id = $2 AND delivered_at IS NULL AND given_up_at IS NULL",
            )
            .bind(ms(now))
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(done > 0)
        }

        /// An endpoint's deliveries, newest first: `limit` older than `before`.
        pub(crate) async fn deliveries<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            endpoint_id: &str,
            before: Option<i64>,
            limit: u32,
        ) -> $crate::Result<Vec<$crate::Delivery>> {
            let rows: Vec<$crate::shared::relay::DeliveryRow> = __sqlx::query_as(
                "SELECT id, event_id, body, attempts, next_attempt_at, delivered_at, given_up_at, \
                 last_error, created_at FROM outbox WHERE tenant_id = $1 AND endpoint_id = $2 \
                 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
            )
            .bind(tenant_id)
            .bind(endpoint_id)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(e)
            .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        }

        /// Sends a delivery again (a fresh round of attempts, due now); false when the
        /// endpoint has no such delivery.
        pub(crate) async fn resend_delivery<'c>(
            e: impl __sqlx::Executor<'c, Database = $db>,
            tenant_id: &str,
            endpoint_id: &str,
            id: i64,
            now: chrono::DateTime<chrono::Utc>,
        ) -> $crate::Result<bool> {
            let done = __sqlx::query(
                "UPDATE outbox SET delivered_at = NULL, given_up_at = NULL, attempts = 0, \
                 next_attempt_at = $1, created_at = $1 WHERE tenant_id = $2 AND endpoint_id = $3 AND id = $4",
            )
            .bind($crate::codec::ms(now))
            .bind(tenant_id)
            .bind(endpoint_id)
            .bind(id)
            .execute(e)
            .await?
            .rows_affected();
            Ok(done > 0)
        }
    };
}
