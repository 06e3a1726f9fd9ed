//! `GET /v1/usage`: token totals per user and model, one's own or (with
//! the `view_metrics` permission) everyone's.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::access::Caller;
use crate::code::ErrorCode;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageQuery {
    /// Look back this many days (default 30).
    #[serde(default = "default_days")]
    days: u32,
    /// Every user's totals (needs the view_metrics permission).
    #[serde(default)]
    all: bool,
}

fn default_days() -> u32 {
    30
}

/// `GET /v1/usage?days=&all=`: token totals per user and model.
#[utoipa::path(get, path = "/v1/usage", tag = "inference", params(UsageQuery),
    responses((status = 200, description = "Token totals per user and model", body = crate::wire::UsageList)))]
pub(crate) async fn usage(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<UsageQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    if !(1..=3650).contains(&q.days) {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            "days must be between 1 and 3650",
        ));
    }
    let me = caller
        .principal
        .user_id
        .clone()
        .ok_or_else(|| ApiError::unauthenticated("sign in to see usage"))?;
    let scope = if q.all {
        offgrid_policy::authorize(&caller.principal, offgrid_domain::Permission::ViewMetrics)
            .map_err(|_| {
                ApiError::forbidden(
                    ErrorCode::InsufficientPermissions,
                    "all=true needs the view_metrics permission",
                )
            })?;
        offgrid_domain::Scope::everything_for(&caller.principal).ok_or_else(|| {
            ApiError::forbidden(
                ErrorCode::InsufficientPermissions,
                "all=true is for administrators",
            )
        })?
    } else {
        offgrid_domain::Scope::owned_by(me)
    };
    let since = offgrid_domain::Timestamp(super::openai::now()).plus_days(-i64::from(q.days));
    let repo = state.usage.clone();
    let totals = crate::trace::block(move || repo.totals(&scope, since))
        .await?
        .map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(crate::wire::UsageList {
        object: crate::wire::LIST.to_owned(),
        data: totals,
        days: q.days,
    }))
}
