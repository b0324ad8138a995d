//! Customer CSV import: good rows are kept, each bad row is reported with its line and
//! reason, and no row is ever half-imported. A UTF-8 byte-order mark, CRLF line ends and
//! quoted fields are all fine.

use std::collections::HashMap;

use assent_core::consent::Source;
use assent_core::phone::E164;
use assent_store::{ContactMethod, Customer, NewLedgerEntry, Result};
use serde::Serialize;

use crate::AppState;
use crate::service::{new_id, toggle_entries};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// The line in the file; the header is line 1.
    pub line: usize,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
    pub rejected: Vec<Rejected>,
}

/// Splits CSV text into records (RFC 4180), each with the line it starts on.
pub fn records(text: &str) -> Vec<(usize, Vec<String>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut field = String::new();
    let mut record = Vec::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => record.push(std::mem::take(&mut field)),
            '\r' if !quoted && chars.peek() == Some(&'\n') => {}
            '\n' if !quoted => {
                record.push(std::mem::take(&mut field));
                if !(record.len() == 1 && record[0].trim().is_empty()) {
                    out.push((start, std::mem::take(&mut record)));
                }
                record.clear();
                line += 1;
                start = line;
            }
            c => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        out.push((start, record));
    }
    out
}

/// A yes/no cell; `None` when the column is missing or the cell blank, which means "the
/// default" for a new phone and "leave it as it is" for a phone already on a record.
fn flag(v: Option<&String>) -> std::result::Result<Option<bool>, String> {
    Ok(Some(
        match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") => return Ok(None),
            Some("true" | "yes" | "y" | "1" | "on") => true,
            Some("false" | "no" | "n" | "0" | "off") => false,
            Some(other) => return Err(format!("{other:?} is not yes or no")),
        },
    ))
}

/// One row's values, checked.
struct Parsed {
    name: String,
    phone: E164,
    job: Option<bool>,
    mk: Option<bool>,
    tags: Vec<String>,
    address: Option<String>,
}

/// A row ready to write, or why not.
enum Row {
    New(Customer, Vec<NewLedgerEntry>),
    Update {
        customer_id: String,
        phone: E164,
        toggles: (Option<bool>, Option<bool>),
    },
}

pub async fn import_customers(
    app: &AppState,
    tenant_id: &str,
    text: &str,
    mut progress: impl FnMut(usize, usize),
) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let recs = records(text);
    let Some(((_, header), rows)) = recs.split_first() else {
        report.rejected.push(Rejected {
            line: 1,
            error: "the file is empty; the first line must be a header".into(),
        });
        return Ok(report);
    };
    let col: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    for required in ["name", "phone"] {
        if !col.contains_key(required) {
            report.rejected.push(Rejected {
                line: 1,
                error: format!("the header has no {required} column"),
            });
            return Ok(report);
        }
    }
    let now = app.clock.now();
    let mut owners: HashMap<E164, String> = HashMap::new();
    for (phone, customer) in app.store.phone_owners(tenant_id).await? {
        owners.entry(phone).or_insert(customer);
    }
    let mut seen: HashMap<E164, usize> = HashMap::new();
    let mut ready = Vec::new();
    let total = rows.len();
    for (n, (line, fields)) in rows.iter().enumerate() {
        if n % 1000 == 0 {
            progress(n, total);
        }
        let get = |name: &str| col.get(name).and_then(|i| fields.get(*i));
        let result = (|| -> std::result::Result<Parsed, String> {
            let name = get("name")
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if name.is_empty() {
                return Err("name is required".into());
            }
            let raw = get("phone").map(|s| s.trim()).unwrap_or("");
            let phone = E164::parse(raw).map_err(|e| format!("phone {raw:?}: {e}"))?;
            let job =
                flag(get("job_notifications")).map_err(|e| format!("job_notifications: {e}"))?;
            let mk =
                flag(get("marketing_updates")).map_err(|e| format!("marketing_updates: {e}"))?;
            let tags = get("tags")
                .map(|t| {
                    t.split([';', ' ', '\t'])
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let address = get("address")
                .map(|a| a.trim().to_string())
                .filter(|a| !a.is_empty());
            Ok(Parsed {
                name,
                phone,
                job,
                mk,
                tags,
                address,
            })
        })();
        let Parsed {
            name,
            phone,
            job,
            mk,
            tags,
            address,
        } = match result {
            Ok(v) => v,
            Err(error) => {
                report.rejected.push(Rejected { line: *line, error });
                continue;
            }
        };
        if let Some(first) = seen.get(&phone) {
            report.rejected.push(Rejected {
                line: *line,
                error: format!("phone {phone} is already on line {first}"),
            });
            continue;
        }
        seen.insert(phone.clone(), *line);
        match owners.get(&phone) {
            Some(existing) => ready.push(Row::Update {
                customer_id: existing.clone(),
                phone,
                toggles: (job, mk),
            }),
            None => {
                // A new contact method: Job Notifications on, Marketing updates off.
                let (job, mk) = (job.unwrap_or(true), mk.unwrap_or(false));
                let ledger = toggle_entries(&phone, None, (job, mk), Source::Import, "import", now);
                let c = Customer {
                    id: new_id(),
                    name,
                    address,
                    tags,
                    phones: vec![ContactMethod {
                        number: phone,
                        job_notifications: job,
                        marketing_updates: mk,
                    }],
                    created_at: now,
                };
                ready.push(Row::New(c, ledger));
            }
        }
    }
    let mut new = Vec::new();
    for row in ready {
        match row {
            Row::New(c, l) => new.push((c, l)),
            Row::Update {
                customer_id,
                phone,
                toggles,
            } => {
                let Some(c) = app.store.customer(tenant_id, &customer_id).await? else {
                    continue;
                };
                let old = c
                    .phones
                    .iter()
                    .find(|p| p.number == phone)
                    .map(|p| (p.job_notifications, p.marketing_updates));
                // A toggle the file leaves blank stays as the customer set it.
                let (was_job, was_mk) = old.unwrap_or((true, false));
                let toggles = (toggles.0.unwrap_or(was_job), toggles.1.unwrap_or(was_mk));
                if old == Some(toggles) {
                    report.updated += 1;
                    continue;
                }
                let ledger = toggle_entries(&phone, old, toggles, Source::Import, "import", now);
                app.store
                    .set_toggles(tenant_id, &customer_id, &phone, toggles, &ledger)
                    .await?;
                report.updated += 1;
            }
        }
    }
    report.created = new.len();
    app.store.create_customers(tenant_id, &new).await?;
    progress(total, total);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_records_handle_bom_crlf_quotes_and_blank_lines() {
        let text = "\u{feff}name,phone,tags\r\n\"Ortega, Luis\",512-555-0178,\"vip;hvac\"\r\n\r\nZoë \"Z\",5125550179,\n";
        let r = records(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].1, vec!["name", "phone", "tags"]);
        assert_eq!(
            r[1],
            (
                2,
                vec![
                    "Ortega, Luis".to_string(),
                    "512-555-0178".into(),
                    "vip;hvac".into()
                ]
            )
        );
        assert_eq!(r[2].0, 4);
        assert_eq!(r[2].1[0], "Zoë \"Z\"");
    }
}
