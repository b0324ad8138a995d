//! The operator's commands for a self-hosted install: registration decisions and the web
//! app's accounts (`assent registration …`, `assent user …`).

use std::sync::Arc;

use anyhow::{Context, bail};
use assent_core::gate::RegistrationStatus;
use assent_server::{AppState, SystemClock};
use assent_store::RegistrationKind;
use clap::{Subcommand, ValueEnum};

#[derive(Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Register for Texting (every text waits for it).
    Texting,
    /// Marketing Registration (opt-in requests and marketing texts wait for it).
    Marketing,
}

impl Kind {
    fn registration(self) -> RegistrationKind {
        match self {
            Kind::Texting => RegistrationKind::Texting,
            Kind::Marketing => RegistrationKind::Marketing,
        }
    }
}

#[derive(Subcommand)]
pub enum RegistrationCommand {
    /// Approve a tenant's registration: the operator's decision where nobody else decides.
    Approve {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        kind: Kind,
        /// Shown to the tenant beside the status.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a tenant's registration; the tenant may then correct it and submit again.
    Reject {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        kind: Kind,
        /// What to correct, shown to the tenant beside the status.
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user who signs in at /login; the password comes from ASSENT_PASSWORD or
    /// is asked for on stdin (twice on a terminal).
    Create {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// End an account's lockout after failed sign-ins now, instead of in 15 minutes.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Set an account's password (ASSENT_PASSWORD, or asked twice on a terminal); its lock
    /// is cleared and its sessions end.
    SetPassword {
        #[arg(long)]
        email: String,
    },
    /// List a tenant's accounts, one JSON object a line: email, created_at, failed_logins,
    /// locked_until.
    List {
        /// The tenant's slug.
        #[arg(long)]
        tenant: String,
    },
}

async fn app() -> anyhow::Result<AppState> {
    let store = crate::open_store(&crate::database_url()).await?;
    Ok(AppState::with_simulator(
        store,
        Arc::new(SystemClock),
        crate::config("127.0.0.1:8080"),
    ))
}

fn api_error(e: assent_server::error::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{}", e.message)
}

pub async fn registration(command: RegistrationCommand) -> anyhow::Result<()> {
    let (slug, kind, reason, status) = match command {
        RegistrationCommand::Approve {
            tenant,
            kind,
            reason,
        } => (tenant, kind, reason, RegistrationStatus::Approved),
        RegistrationCommand::Reject {
            tenant,
            kind,
            reason,
        } => (tenant, kind, reason, RegistrationStatus::Rejected),
    };
    let reason = reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty());
    let app = app().await?;
    let tenant = app
        .store
        .tenant_by_slug(&slug)
        .await?
        .with_context(|| format!("no tenant with slug {slug:?}"))?;
    let kind = kind.registration();
    assent_server::service::registrations::decide(&app, &tenant.id, kind, status, reason.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}",
        serde_json::json!({"tenant": tenant.slug, "kind": kind.as_str(),
            "status": status.as_str(), "reason": reason})
    );
    Ok(())
}

pub async fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { tenant, email } => {
            let password = read_password()?;
            let app = app().await?;
            let user = assent_server::web::create_user(&app, &tenant, &email, &password)
                .await
                .map_err(api_error)?;
            println!(
                "{}",
                serde_json::json!({"id": user.id, "tenant_id": user.tenant_id, "email": user.email})
            );
        }
        UserCommand::Unlock { email } => {
            let app = app().await?;
            let user = assent_server::web::unlock_user(&app, &email)
                .await
                .map_err(api_error)?;
            println!(
                "{}",
                serde_json::json!({"email": user.email, "unlocked": true})
            );
        }
        UserCommand::SetPassword { email } => {
            // The account is looked up before the password is asked for.
            let app = app().await?;
            let user = assent_server::web::user_by_email(&app, &email)
                .await
                .map_err(api_error)?;
            let password = read_password()?;
            assent_server::web::set_password(&app, &user.email, &password)
                .await
                .map_err(api_error)?;
            println!(
                "{}",
                serde_json::json!({"email": user.email, "password_set": true})
            );
        }
        UserCommand::List { tenant } => {
            let app = app().await?;
            let t = app
                .store
                .tenant_by_slug(&tenant)
                .await?
                .with_context(|| format!("no tenant with slug {tenant:?}"))?;
            let now = app.clock.now();
            let mut after: Option<String> = None;
            loop {
                let page = app
                    .store
                    .users_of_tenant(&t.id, after.as_deref(), 500)
                    .await?;
                for u in &page {
                    let locked_until = u.locked_until.filter(|l| *l > now);
                    println!(
                        "{}",
                        serde_json::json!({"email": u.email, "created_at": u.created_at,
                            "failed_logins": u.failed_logins, "locked_until": locked_until})
                    );
                }
                match page.last() {
                    Some(u) if page.len() == 500 => after = Some(u.email.clone()),
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// One line from stdin, without its end; not echoed on a terminal.
fn read_line(prompt: &str, tty: bool) -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if tty {
        stty("-echo");
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if tty {
        stty("echo");
        eprintln!();
    }
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// The password from ASSENT_PASSWORD, or typed on stdin: on a terminal the rules come
/// first, the password is checked as soon as it is typed, then asked again to confirm.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let check = |p: &str| assent_server::web::check_password(p).map_err(api_error);
    if let Ok(p) = std::env::var("ASSENT_PASSWORD")
        && !p.is_empty()
    {
        check(&p)?;
        return Ok(p);
    }
    let tty = std::io::stdin().is_terminal();
    let rules = assent_server::web::PASSWORD_RULES;
    let p = read_line(&format!("Password ({rules}): "), tty)?;
    if p.is_empty() {
        bail!("no password given (set ASSENT_PASSWORD or type one)");
    }
    check(&p)?;
    if tty && read_line("The same password again: ", tty)? != p {
        bail!("the two passwords differ; nothing was changed");
    }
    Ok(p)
}
