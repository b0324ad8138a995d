//! The Team page (owners only): who signs in to the business's account, with their role;
//! an owner adds, disables, enables and removes users and resets a password. The rules
//! (roles, an owner not locking themselves out) are [`crate::service::team`]'s.

use assent_store::{Role, User};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use askama::Template;

use super::session::{Posted, SignedIn};
use super::{Chrome, Section, TimeEl, WebResult, render, see_other, url_part};
use crate::AppState;
use crate::service::{self, team};

/// How many users the page lists at a time.
const PAGE: u32 = 50;

struct Member {
    id: String,
    email: String,
    role: &'static str,
    owner: bool,
    disabled: bool,
    locked: bool,
    you: bool,
    added: TimeEl,
}

#[derive(Template)]
#[template(path = "team.html")]
struct TeamPage<'a> {
    chrome: Chrome<'a>,
    members: Vec<Member>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// The add form's fields as typed, after a refusal.
    email: &'a str,
    marketer: bool,
    /// The email the next page starts after.
    next: Option<String>,
}

pub fn role_label(r: Role) -> &'static str {
    match r {
        Role::Owner => "Owner",
        Role::Marketer => "Marketer",
    }
}

#[derive(Deserialize)]
pub struct TeamQuery {
    after: Option<String>,
    notice: Option<String>,
}

fn notice_of(code: &str) -> Option<&'static str> {
    Some(match code {
        "added" => "User added. Give them their email and password; they can sign in now.",
        "saved" => "Role saved.",
        "disabled" => "User disabled: they are signed out and cannot sign in.",
        "enabled" => "User enabled: they can sign in again.",
        "removed" => "User removed. What they recorded still names them.",
        "password" => "Password reset: their sessions ended; they sign in with the new one.",
        _ => return None,
    })
}

async fn page(
    app: &AppState,
    user: &SignedIn,
    after: Option<&str>,
    notice: Option<&'static str>,
    error: Option<String>,
    typed: (&str, bool),
) -> WebResult<Response> {
    let t = &user.tenant;
    let mut users: Vec<User> = app.store.users_of_tenant(&t.id, after, PAGE + 1).await?;
    let next = if users.len() > PAGE as usize {
        users.truncate(PAGE as usize);
        users.last().map(|u| url_part(&u.email))
    } else {
        None
    };
    let now = app.clock.now();
    let members = users
        .into_iter()
        .map(|u| Member {
            id: url_part(&u.id),
            role: role_label(u.role),
            owner: u.role == Role::Owner,
            disabled: u.disabled,
            locked: u.locked_until.is_some_and(|l| l > now),
            you: u.id == user.user.id,
            added: TimeEl::new(t, u.created_at),
            email: u.email,
        })
        .collect();
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut res = render(&TeamPage {
        chrome: Chrome::new(user, "Team", Section::Team),
        members,
        notice,
        error,
        email: typed.0,
        marketer: typed.1,
        next,
    });
    *res.status_mut() = status;
    Ok(res)
}

pub async fn team(
    State(app): State<AppState>,
    user: SignedIn,
    Query(q): Query<TeamQuery>,
) -> WebResult<Response> {
    user.owner_only()?;
    let notice = q.notice.as_deref().and_then(notice_of);
    page(&app, &user, q.after.as_deref(), notice, None, ("", true)).await
}

/// The page's words for what the service refused.
fn team_error(e: service::Error) -> Result<String, service::Error> {
    match e {
        service::Error::Invalid { field, message } => Ok(match field.as_str() {
            "email" if message == "already has an account" => {
                "That email already has an account.".to_string()
            }
            "email" => "Enter the person's email address.".to_string(),
            "password" => format!("The password {message}."),
            "role" => "Choose Owner or Marketer.".to_string(),
            _ => format!("{}{}.", message[..1].to_uppercase(), &message[1..]),
        }),
        other => Err(other),
    }
}

pub async fn add(State(app): State<AppState>, posted: Posted) -> WebResult<Response> {
    let user = &posted.user;
    user.owner_only()?;
    let email = posted.field("email").trim();
    let role = posted.field("role");
    match team::add(&app, &user.tenant, email, posted.field("password"), role).await {
        Ok(added) => {
            tracing::info!(tenant = %user.tenant.id, by = %user.user.id, user = %added.id, role = added.role.as_str(), "user added");
            Ok(see_other("/team?notice=added"))
        }
        Err(e) => {
            let message = team_error(e)?;
            page(
                &app,
                user,
                None,
                None,
                Some(message),
                (email, role != "owner"),
            )
            .await
        }
    }
}

/// Disable, enable, or a new role, from one user's row.
pub async fn access(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    user.owner_only()?;
    let member = team::member(&app, &user.tenant, &id).await?;
    let (role, disabled, notice) = match posted.field("action") {
        "disable" => (member.role, true, "disabled"),
        "enable" => (member.role, false, "enabled"),
        _ => match team::role_of(posted.field("role")) {
            Ok(role) => (role, member.disabled, "saved"),
            Err(e) => {
                let message = team_error(e)?;
                return page(&app, user, None, None, Some(message), ("", true)).await;
            }
        },
    };
    match team::set_access(&app, &user.tenant, &user.user, &id, role, disabled).await {
        Ok(()) => {
            tracing::info!(tenant = %user.tenant.id, by = %user.user.id, user = %id, role = role.as_str(), disabled, "user access changed");
            Ok(see_other(&format!("/team?notice={notice}")))
        }
        Err(e) => {
            let message = team_error(e)?;
            page(&app, user, None, None, Some(message), ("", true)).await
        }
    }
}

pub async fn remove(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    user.owner_only()?;
    match team::remove(&app, &user.tenant, &user.user, &id).await {
        Ok(()) => {
            tracing::info!(tenant = %user.tenant.id, by = %user.user.id, user = %id, "user removed");
            Ok(see_other("/team?notice=removed"))
        }
        Err(e) => {
            let message = team_error(e)?;
            page(&app, user, None, None, Some(message), ("", true)).await
        }
    }
}

pub async fn reset_password(
    State(app): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> WebResult<Response> {
    let user = &posted.user;
    user.owner_only()?;
    match team::reset_password(&app, &user.tenant, &id, posted.field("password")).await {
        Ok(_) => Ok(see_other("/team?notice=password")),
        Err(e) => {
            let message = team_error(e)?;
            page(&app, user, None, None, Some(message), ("", true)).await
        }
    }
}
