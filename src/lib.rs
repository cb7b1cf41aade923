//! keywarden: platform API keys and bring-your-own provider keys, as one Cloudflare Worker.
//!
//! Only this file, `http/` and the D1/KV adapters in `store/` touch `worker`; everything else
//! is plain Rust that `cargo test` runs natively.

pub mod audit;
pub mod crypto;
pub mod error;
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

/// Housekeeping runs here once later issues give it work; the trigger is declared already.
#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, _env: Env, _ctx: ScheduleContext) {
    worker::console_log!("{}", serde_json::json!({"level": "info", "msg": "scheduled run", "cron": event.cron()}));
}
