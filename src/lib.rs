//! keywarden: platform API keys and bring-your-own provider keys, as one Cloudflare Worker.
//!
//! Only this file, `http/` and the adapters in `store/` (D1, KV, the key authority's Durable
//! Object and its stubs) touch `worker`; everything else is plain Rust that `cargo test` runs
//! natively.

pub mod audit;
pub mod crypto;
pub mod deps;
pub mod error;
pub mod housekeeping;
pub mod idempotency;
pub mod input;
pub mod keys;
pub mod name;
pub mod outbox;
pub mod page;
pub mod providers;
pub mod settings;
pub mod storage;
pub mod store;
pub mod time;
pub mod vault;
pub mod webhooks;
pub mod workspaces;

mod http;

use worker::{event, Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    Ok(http::handle(req, env, ctx).await)
}

/// Housekeeping: bounded work every five minutes, logged as one line.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let line = match run_housekeeping(&env).await {
        Ok(report) => serde_json::json!({
            "level": if report.errors.is_empty() { "info" } else { "warn" },
            "msg": "scheduled run",
            "cron": event.cron(),
            "report": format!("{report:?}"),
        }),
        Err(detail) => serde_json::json!({"level": "error", "msg": "scheduled run failed", "cron": event.cron(), "detail": detail}),
    };
    worker::console_log!("{line}");
}

async fn run_housekeeping(env: &Env) -> std::result::Result<housekeeping::Report, String> {
    let bindings = http::Bindings::from_env(env, None)?;
    if !bindings.has_keks() {
        return Err("VAULT_KEKS is not set or is invalid".to_string());
    }
    Ok(housekeeping::run(&bindings.deps(worker::Date::now().as_millis() as i64)).await)
}
