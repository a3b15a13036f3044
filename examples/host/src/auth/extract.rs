//! One extractor per permission (SPEC §13 "Roles"). A handler that takes [`Admin`] runs
//! only for an admin of some tenant; tenant checks against paths and documents use the
//! [`Caller`] it carries. Missing or invalid tokens answer 401, a wrong role 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::{Caller, Role};
use crate::error::AppError;
use crate::AppState;

/// Reads and verifies the bearer token.
async fn caller(parts: &mut Parts, state: &AppState) -> Result<Caller, AppError> {
    if let Some(caller) = parts.extensions.get::<Caller>() {
        return Ok(caller.clone());
    }
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        AppError::Unauthenticated("an `Authorization: Bearer` token is required".to_owned())
    })?;
    let value = header.to_str().map_err(|_| {
        AppError::Unauthenticated("the `Authorization` header is not text".to_owned())
    })?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AppError::Unauthenticated(
                "the `Authorization` header must be `Bearer <token>`".to_owned(),
            )
        })?;
    let caller = state.verifier.verify(token).await?;
    parts.extensions.insert(caller.clone());
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        caller(parts, state).await
    }
}

/// Declares an extractor that admits callers with any of the given roles.
macro_rules! permission {
    ($(#[$doc:meta])* $name:ident, $what:literal, [$($role:ident),+]) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(pub Caller);

        impl $name {
            /// The roles admitted.
            pub const ROLES: &'static [Role] = &[$(Role::$role),+];
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = AppError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, AppError> {
                let caller = caller(parts, state).await?;
                if caller.has_any(Self::ROLES) {
                    Ok($name(caller))
                } else {
                    let names: Vec<&str> = Self::ROLES.iter().map(|r| r.as_str()).collect();
                    Err(AppError::Forbidden(format!(
                        "{} needs the role {}",
                        $what,
                        names.join(" or ")
                    )))
                }
            }
        }
    };
}

permission!(
    /// Decide and record outcomes: `service` or `admin`.
    Decider, "deciding", [Service, Admin]
);
permission!(
    /// Write playbook and experiment drafts, validate and simulate: `author` or `admin`.
    Author, "authoring playbooks and experiments", [Author, Admin]
);
permission!(
    /// Publish, deprecate, tenant policy, experiments' activation, audit, receipts export,
    /// tenant metrics: `admin`.
    Admin, "this operation", [Admin]
);
permission!(
    /// Approve or reject a dual-channel action: `approver` (the action's own actor is
    /// admitted by the approvals route through [`Caller`] and the action's record).
    Approver, "approving actions", [Approver]
);

/// Reading or changing an actor's preferences: the actor itself (`sub` = `actor_id`) or
/// `admin`/`service`. The actor id comes from the path's `{actor_id}`.
#[derive(Debug, Clone)]
pub struct PreferencesOf {
    /// The caller.
    pub caller: Caller,
    /// The actor whose preferences these are.
    pub actor_id: String,
}

impl FromRequestParts<AppState> for PreferencesOf {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = caller(parts, state).await?;
        let crate::routes::PathParams(params): crate::routes::PathParams<
            std::collections::HashMap<String, String>,
        > = crate::routes::PathParams::from_request_parts(parts, state).await?;
        let actor_id = params.get("actor_id").cloned().ok_or_else(|| {
            AppError::Internal("preferences route without `{actor_id}`".to_owned())
        })?;
        if caller.sub == actor_id || caller.has_any(&[Role::Admin, Role::Service]) {
            Ok(PreferencesOf { caller, actor_id })
        } else {
            Err(AppError::Forbidden(
                "an actor's preferences are theirs, or an `admin`'s or `service`'s".to_owned(),
            ))
        }
    }
}
