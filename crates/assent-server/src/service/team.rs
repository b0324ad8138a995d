//! The team: who signs in to a tenant's web app and what each may change. An owner also
//! manages the team, the registrations, the sending numbers and the settings; a marketer
//! works with customers, conversations and campaigns. The web app asks [`may_manage`]
//! before every change an owner alone may make, whatever the page showed.

use assent_store::{Role, StoreError, Tenant, User};

use super::error::{Error, Result};
use crate::AppState;
use crate::error::Code;

/// Whether this user may change the team, registrations, senders and settings.
pub fn may_manage(u: &User) -> bool {
    u.role == Role::Owner && !u.disabled
}

/// A role from a form or request: `owner` or `marketer`.
pub fn role_of(v: &str) -> Result<Role> {
    match v {
        "owner" => Ok(Role::Owner),
        "marketer" => Ok(Role::Marketer),
        _ => Err(Error::invalid("role", "must be owner or marketer")),
    }
}

/// One of the tenant's users.
pub async fn member(app: &AppState, t: &Tenant, user_id: &str) -> Result<User> {
    app.store
        .tenant_user(&t.id, user_id)
        .await?
        .ok_or_else(|| Error::not_found("user"))
}

/// An owner cannot lock themselves out: their own account is neither disabled, demoted nor
/// removed (another owner can).
fn not_yourself(me: &User, user_id: &str, what: &str) -> Result<()> {
    if me.id == user_id {
        return Err(Error::invalid(
            "user",
            format!("you cannot {what} your own account; another owner can"),
        ));
    }
    Ok(())
}

/// Adds a user with a role; the email must be free across every tenant.
pub async fn add(
    app: &AppState,
    t: &Tenant,
    email: &str,
    password: &str,
    role: &str,
) -> Result<User> {
    let role = role_of(role)?;
    crate::web::create_user_as(app, &t.slug, email, password, role)
        .await
        .map_err(|e| match e.code {
            Code::InvalidField => match e.message.split_once(": ") {
                Some((field, message)) => Error::invalid(field, message),
                None => Error::invalid("email", e.message),
            },
            Code::EmailTaken => Error::invalid("email", "already has an account"),
            code => Error::refused(code, e.message),
        })
}

/// Sets a user's role and whether they are disabled (disabling ends their sessions).
pub async fn set_access(
    app: &AppState,
    t: &Tenant,
    me: &User,
    user_id: &str,
    role: Role,
    disabled: bool,
) -> Result<()> {
    if disabled {
        not_yourself(me, user_id, "disable")?;
    }
    if role != Role::Owner {
        not_yourself(me, user_id, "demote")?;
    }
    match app
        .store
        .set_user_access(&t.id, user_id, role, disabled)
        .await
    {
        Err(StoreError::NotFound) => Err(Error::not_found("user")),
        other => Ok(other?),
    }
}

/// Removes a user; what they recorded keeps naming them as it was written.
pub async fn remove(app: &AppState, t: &Tenant, me: &User, user_id: &str) -> Result<()> {
    not_yourself(me, user_id, "remove")?;
    match app.store.delete_user(&t.id, user_id).await {
        Err(StoreError::NotFound) => Err(Error::not_found("user")),
        other => Ok(other?),
    }
}

/// Gives one of the tenant's users a new password (their sessions end, any lock clears).
pub async fn reset_password(
    app: &AppState,
    t: &Tenant,
    user_id: &str,
    password: &str,
) -> Result<User> {
    let user = member(app, t, user_id).await?;
    crate::web::check_password(password).map_err(|e| {
        let message = e.message.strip_prefix("password: ").unwrap_or(&e.message);
        Error::invalid("password", message)
    })?;
    crate::web::set_password(app, &user.email, password)
        .await
        .map_err(|e| Error::refused(e.code, e.message))?;
    Ok(user)
}
