//! keywarden: platform API keys and bring-your-own provider keys, as one Cloudflare Worker.
//!
//! Only this file, `http/` and the D1/KV adapters in `store/` touch `worker`; everything else
//! is plain Rust that `cargo test` runs natively.

pub mod audit;
pub mod crypto;
pub mod error;
pub mod housekeeping;
pub mod keys;
pub mod name;
pub mod page;
pub mod providers;
pub mod settings;
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
    let store = store::d1::D1Store::new(env.d1("DB").map_err(|e| e.to_string())?);
    let blobs = store::kv::KvBlobs::new(env.kv("SECRETS").map_err(|e| e.to_string())?);
    let keks_text = env.secret("VAULT_KEKS").map(|s| s.to_string()).or_else(|_| env.var("VAULT_KEKS").map(|v| v.to_string()));
    let keks = vault::Keks::parse(&keks_text.map_err(|_| "VAULT_KEKS is not set".to_string())?).map_err(|e| e.to_string())?;
    let settings = http::settings(env)?;
    // The cron re-checks stored hosts under the deployment's own policy, as requests do.
    let deployment = providers::service::Deployment { keks: &keks, allow_insecure_hosts: settings.allow_insecure_provider_hosts };
    let client = http::outbound::FetchClient::default();
    let clock = || worker::Date::now().as_millis() as i64;
    Ok(housekeeping::run(&store, &blobs, &client, &client, &deployment, &clock).await)
}
