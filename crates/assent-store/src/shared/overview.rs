//! The web app's overview (what needs attention, consent and delivery by day) and the
//! lists of what transactional campaigns run on (estimates, recurring services, calls),
//! written once for both backends ([`shared_overview_sql!`] stamps out a backend's
//! [`crate::OverviewStore`]). Every read is bounded: the overview is grouped in the
//! database, and the lists are keyset pages.

use chrono::{DateTime, Utc};

use crate::codec::time;

/// What needs someone's attention, each part bounded.
#[derive(Debug, Clone, Default)]
pub struct Attention {
    /// Undecided reviews, the earliest deadline first (at most the limit asked for).
    pub open_reviews: Vec<crate::Review>,
    /// How many reviews are undecided (counted up to [`crate::page::COUNT_CAP`] + 1).
    pub open_review_count: u64,
    /// Messages held (deferred) now, by the gate's reason (`None`: no reason recorded).
    pub held_by_reason: Vec<(Option<String>, u64)>,
    /// Sends that failed or were not delivered since the time asked for.
    pub failed_count: u64,
    /// The latest of them: phone, status, reason, when.
    pub failed: Vec<FailedSend>,
    /// The latest opt-outs since the time asked for, newest first.
    pub opt_outs: Vec<RecentOptOut>,
    /// How many opt-outs since then (counted up to the cap + 1).
    pub opt_out_count: u64,
}

#[derive(Debug, Clone)]
pub struct FailedSend {
    pub phone: String,
    pub status: crate::MessageStatus,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RecentOptOut {
    pub phone: String,
    pub channel: assent_core::consent::Topic,
    pub source: assent_core::consent::Source,
    pub at: DateTime<Utc>,
}

/// One day's counts, the day numbered from the Unix epoch in the tenant's local time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub day: i64,
    /// Opt-ins (consent) or messages delivered (delivery).
    pub good: u64,
    /// Opt-outs (consent) or messages that failed or were not delivered (delivery).
    pub bad: u64,
}

/// An estimate joined with its customer's name (a gone customer has none).
#[derive(sqlx::FromRow)]
pub struct NamedEstimate {
    #[sqlx(flatten)]
    pub row: crate::shared::EstimateRow,
    pub customer_name: Option<String>,
}

/// A recurring service joined with its customer's name.
#[derive(sqlx::FromRow)]
pub struct NamedRecurring {
    #[sqlx(flatten)]
    pub row: crate::shared::RecurringRow,
    pub customer_name: Option<String>,
}

/// The lists of what transactional campaigns run on, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignData {
    Estimates,
    RecurringServices,
    Calls,
}

impl CampaignData {
    pub fn table(self) -> &'static str {
        match self {
            CampaignData::Estimates => "estimates",
            CampaignData::RecurringServices => "recurring_services",
            CampaignData::Calls => "calls",
        }
    }
}

/// A `calls` row.
#[derive(sqlx::FromRow)]
pub struct CallRow {
    pub id: String,
    pub from_number: String,
    pub to_number: String,
    pub missed: bool,
    pub at: i64,
}

impl TryFrom<CallRow> for crate::Call {
    type Error = crate::StoreError;
    fn try_from(r: CallRow) -> crate::Result<Self> {
        Ok(crate::Call {
            id: r.id,
            from: crate::codec::phone(&r.from_number)?,
            to: crate::codec::phone(&r.to_number)?,
            missed: r.missed,
            at: time(r.at),
        })
    }
}

/// The overview and the campaign data lists of one backend:
/// `shared_overview_sql!(sqlx::Sqlite, SqliteStore, reader)`.
#[macro_export]
macro_rules! shared_overview_sql {
    ($db:ty, $store:ty, $pool:ident) => {
        #[async_trait::async_trait]
        impl $crate::OverviewStore for $store {
            async fn attention(
                &self,
                tenant_id: &str,
                since: chrono::DateTime<chrono::Utc>,
                limit: usize,
            ) -> $crate::Result<$crate::shared::overview::Attention> {
                use $crate::__sqlx;
                use $crate::codec::{ms, time};
                use $crate::shared::overview::{Attention, FailedSend, RecentOptOut};
                let limit = i64::try_from(limit.min(100)).unwrap_or(100);
                let cap = i64::try_from($crate::page::COUNT_CAP + 1).unwrap_or(i64::MAX);
                let reviews: Vec<$crate::shared::ReviewRow> = __sqlx::query_as(
                    "SELECT * FROM reviews WHERE tenant_id = $1 AND decision IS NULL \
                     ORDER BY COALESCE(deadline_at, created_at), id LIMIT $2",
                )
                .bind(tenant_id)
                .bind(limit)
                .fetch_all(&self.$pool)
                .await?;
                let open_review_count: i64 = __sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM reviews WHERE tenant_id = $1 \
                     AND decision IS NULL LIMIT $2) AS capped",
                )
                .bind(tenant_id)
                .bind(cap)
                .fetch_one(&self.$pool)
                .await?;
                let held: Vec<(Option<String>, i64)> = __sqlx::query_as(
                    "SELECT reason, count(*) FROM messages WHERE tenant_id = $1 \
                     AND status = 'deferred' GROUP BY reason ORDER BY 2 DESC LIMIT $2",
                )
                .bind(tenant_id)
                .bind(limit)
                .fetch_all(&self.$pool)
                .await?;
                let failed: Vec<(String, $crate::MessageStatus, Option<String>, i64)> =
                    __sqlx::query_as(
                        "SELECT phone, status, reason, updated_at FROM messages WHERE tenant_id = $1 \
                         AND status IN ('failed', 'undelivered') AND updated_at >= $2 \
                         ORDER BY updated_at DESC, id DESC LIMIT $3",
                    )
                    .bind(tenant_id)
                    .bind(ms(since))
                    .bind(limit)
                    .fetch_all(&self.$pool)
                    .await?;
                let failed_count: i64 = __sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM messages WHERE tenant_id = $1 \
                     AND status IN ('failed', 'undelivered') AND updated_at >= $2 LIMIT $3) AS capped",
                )
                .bind(tenant_id)
                .bind(ms(since))
                .bind(cap)
                .fetch_one(&self.$pool)
                .await?;
                let opt_outs: Vec<(
                    String,
                    assent_core::consent::Topic,
                    assent_core::consent::Source,
                    i64,
                )> = __sqlx::query_as(
                    "SELECT phone, channel, source, occurred_at FROM consent_ledger \
                     WHERE tenant_id = $1 AND occurred_at >= $2 AND new_state = 'opted_out' \
                     AND old_state <> 'opted_out' ORDER BY occurred_at DESC, seq DESC LIMIT $3",
                )
                .bind(tenant_id)
                .bind(ms(since))
                .bind(limit)
                .fetch_all(&self.$pool)
                .await?;
                let opt_out_count: i64 = __sqlx::query_scalar(
                    "SELECT count(*) FROM (SELECT 1 FROM consent_ledger WHERE tenant_id = $1 \
                     AND occurred_at >= $2 AND new_state = 'opted_out' AND old_state <> 'opted_out' \
                     LIMIT $3) AS capped",
                )
                .bind(tenant_id)
                .bind(ms(since))
                .bind(cap)
                .fetch_one(&self.$pool)
                .await?;
                let n = |v: i64| u64::try_from(v).unwrap_or(0);
                Ok(Attention {
                    open_reviews: reviews
                        .into_iter()
                        .map($crate::Review::try_from)
                        .collect::<$crate::Result<Vec<_>>>()?,
                    open_review_count: n(open_review_count),
                    held_by_reason: held.into_iter().map(|(r, c)| (r, n(c))).collect(),
                    failed_count: n(failed_count),
                    failed: failed
                        .into_iter()
                        .map(|(phone, status, reason, at)| FailedSend {
                            phone,
                            status,
                            reason,
                            at: time(at),
                        })
                        .collect(),
                    opt_outs: opt_outs
                        .into_iter()
                        .map(|(phone, channel, source, at)| RecentOptOut {
                            phone,
                            channel,
                            source,
                            at: time(at),
                        })
                        .collect(),
                    opt_out_count: n(opt_out_count),
                })
            }

            async fn consent_by_day(
                &self,
                tenant_id: &str,
                since: chrono::DateTime<chrono::Utc>,
                offset_ms: i64,
            ) -> $crate::Result<Vec<$crate::shared::overview::DayCounts>> {
                use $crate::__sqlx;
                let rows: Vec<(i64, i64, i64)> = __sqlx::query_as(
                    "SELECT CAST((occurred_at + $1) / 86400000 AS BIGINT) AS day, \
                       CAST(SUM(CASE WHEN new_state = 'opted_in' AND old_state <> 'opted_in' THEN 1 ELSE 0 END) AS BIGINT), \
                       CAST(SUM(CASE WHEN new_state = 'opted_out' AND old_state <> 'opted_out' THEN 1 ELSE 0 END) AS BIGINT) \
                     FROM consent_ledger WHERE tenant_id = $2 AND occurred_at >= $3 \
                     AND new_state IN ('opted_in', 'opted_out') GROUP BY 1 ORDER BY 1",
                )
                .bind(offset_ms)
                .bind(tenant_id)
                .bind($crate::codec::ms(since))
                .fetch_all(&self.$pool)
                .await?;
                Ok(days(rows))
            }

            async fn delivery_by_day(
                &self,
                tenant_id: &str,
                since: chrono::DateTime<chrono::Utc>,
                offset_ms: i64,
            ) -> $crate::Result<Vec<$crate::shared::overview::DayCounts>> {
                use $crate::__sqlx;
                let rows: Vec<(i64, i64, i64)> = __sqlx::query_as(
                    "SELECT CAST((updated_at + $1) / 86400000 AS BIGINT) AS day, \
                       CAST(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END) AS BIGINT), \
                       CAST(SUM(CASE WHEN status <> 'delivered' THEN 1 ELSE 0 END) AS BIGINT) \
                     FROM messages WHERE tenant_id = $2 AND updated_at >= $3 \
                     AND direction = 'outbound' AND status IN ('delivered', 'undelivered', 'failed') \
                     GROUP BY 1 ORDER BY 1",
                )
                .bind(offset_ms)
                .bind(tenant_id)
                .bind($crate::codec::ms(since))
                .fetch_all(&self.$pool)
                .await?;
                Ok(days(rows))
            }

            async fn estimates_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<(
                $crate::Estimate,
                Option<String>,
            )>> {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new(
                    "SELECT e.id, e.customer_id, e.phone, e.number, e.amount_cents, e.status, \
                       e.created_at, c.name AS customer_name \
                     FROM estimates e LEFT JOIN customers c ON c.tenant_id = e.tenant_id \
                       AND c.id = e.customer_id WHERE e.tenant_id = $1",
                );
                sql.param();
                sql.seek(&["e.created_at", "e.id"], true, seek);
                let mut query = __sqlx::query_as::<
                    _,
                    $crate::shared::overview::NamedEstimate,
                >(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let keyed = rows
                    .into_iter()
                    .map(|r| {
                        let key = $crate::page::Key {
                            at: r.row.created_at,
                            id: r.row.id.clone(),
                        };
                        let name = r.customer_name;
                        $crate::Estimate::try_from(r.row).map(|e| (key, (e, name)))
                    })
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn recurring_services_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<(
                $crate::RecurringService,
                Option<String>,
            )>> {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new(
                    "SELECT r.id, r.customer_id, r.name, r.due_on, r.created_at, \
                       c.name AS customer_name \
                     FROM recurring_services r LEFT JOIN customers c ON c.tenant_id = r.tenant_id \
                       AND c.id = r.customer_id WHERE r.tenant_id = $1",
                );
                sql.param();
                sql.seek(&["r.created_at", "r.id"], true, seek);
                let mut query = __sqlx::query_as::<
                    _,
                    $crate::shared::overview::NamedRecurring,
                >(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let keyed = rows
                    .into_iter()
                    .map(|r| {
                        let key = $crate::page::Key {
                            at: r.row.created_at,
                            id: r.row.id.clone(),
                        };
                        let name = r.customer_name;
                        $crate::RecurringService::try_from(r.row).map(|e| (key, (e, name)))
                    })
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }

            async fn campaign_data_count(
                &self,
                tenant_id: &str,
                what: $crate::shared::overview::CampaignData,
            ) -> $crate::Result<u64> {
                use $crate::__sqlx;
                let sql = format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {} WHERE tenant_id = $1 LIMIT $2) AS capped",
                    what.table()
                );
                let n: i64 = __sqlx::query_scalar(__sqlx::AssertSqlSafe(sql))
                    .bind(tenant_id)
                    .bind(i64::try_from($crate::page::COUNT_CAP + 1).unwrap_or(i64::MAX))
                    .fetch_one(&self.$pool)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn calls_page(
                &self,
                tenant_id: &str,
                seek: &$crate::page::Seek,
            ) -> $crate::Result<$crate::page::Page<$crate::Call>> {
                use $crate::__sqlx;
                let mut sql = $crate::page::Sql::new(
                    "SELECT id, from_number, to_number, missed, at FROM calls WHERE tenant_id = $1",
                );
                sql.param();
                sql.seek(&["at", "id"], true, seek);
                let mut query = __sqlx::query_as::<_, $crate::shared::overview::CallRow>(
                    __sqlx::AssertSqlSafe(sql.text),
                )
                .bind(tenant_id);
                if let Some(k) = &seek.from {
                    query = query.bind(k.at).bind(k.id.clone());
                }
                let rows = query.bind(seek.fetch()).fetch_all(&self.$pool).await?;
                let keyed = rows
                    .into_iter()
                    .map(|r| {
                        let key = $crate::page::Key {
                            at: r.at,
                            id: r.id.clone(),
                        };
                        $crate::Call::try_from(r).map(|c| (key, c))
                    })
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::page::Page::of(keyed, seek))
            }
        }

        fn days(rows: Vec<(i64, i64, i64)>) -> Vec<$crate::shared::overview::DayCounts> {
            rows.into_iter()
                .map(|(day, good, bad)| $crate::shared::overview::DayCounts {
                    day,
                    good: u64::try_from(good).unwrap_or(0),
                    bad: u64::try_from(bad).unwrap_or(0),
                })
                .collect()
        }
    };
}
