//! `assent ledger verify`: recomputes every tenant's ledger hash chain (or one tenant's)
//! from the stored entries, a page at a time, and names the first entry that does not hold.

use anyhow::{Context, bail};
use assent_store::shared::chain;

#[derive(clap::Subcommand)]
pub enum LedgerCommand {
    /// Check the ledger's hash chain: every entry's hash recomputed from its fields and the
    /// previous entry's hash. Exits non-zero naming the first entry that does not match.
    Verify {
        /// Only this tenant (its slug); every tenant without it.
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub async fn run(command: LedgerCommand) -> anyhow::Result<()> {
    let LedgerCommand::Verify { tenant } = command;
    let store = crate::open_store(&crate::database_url()).await?;
    let mut tenants = Vec::new();
    match tenant {
        Some(slug) => {
            let t = store
                .tenant_by_slug(&slug)
                .await?
                .with_context(|| format!("no tenant with slug {slug:?}"))?;
            tenants.push(t);
        }
        None => {
            let mut after: Option<String> = None;
            loop {
                let slugs = store.tenant_slugs_page(after.as_deref(), 500).await?;
                let Some(last) = slugs.last().cloned() else {
                    break;
                };
                for slug in slugs {
                    if let Some(t) = store.tenant_by_slug(&slug).await? {
                        tenants.push(t);
                    }
                }
                after = Some(last);
            }
        }
    }
    let mut broken = 0;
    for t in &tenants {
        let check = chain::verify(&*store, &t.id).await?;
        match &check.broken {
            None => println!(
                "ok {}: {} entries, head {}",
                t.slug, check.verified, check.head
            ),
            Some(b) => {
                broken += 1;
                eprintln!("BROKEN {}: {b}", t.slug);
            }
        }
    }
    if broken > 0 {
        bail!(
            "the ledger's hash chain does not hold for {broken} of {} tenant(s)",
            tenants.len()
        );
    }
    Ok(())
}
