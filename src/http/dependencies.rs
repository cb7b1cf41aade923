//! The Worker's bindings as the use cases see them: D1, KV, `fetch`, the KEKs and the
//! settings, read from `env` once per request (or per scheduled run).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use worker::{Date, Delay, Env};

use super::outbound::FetchClient;
use crate::deps::{Clock, Deps};
use crate::settings::Settings;
use crate::store::authority::{DurableAuthority, Layout};
use crate::store::d1::D1Store;
use crate::store::kv::KvBlobs;
use crate::vault::Keks;

/// The dependencies of a use case in the Worker.
pub type LiveDeps<'a> = Deps<'a, D1Store, KvBlobs, FetchClient>;

pub struct Bindings {
    pub store: D1Store,
    /// D1 statements this request has sent so far, by any of its stores.
    d1_statements: Rc<Cell<usize>>,
    pub blobs: KvBlobs,
    pub client: FetchClient,
    keks: Result<Keks, String>,
    pub settings: Settings,
}

/// The Worker's clock and timers; `Deps` never lets the clock run behind the request's arrival.
struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> i64 {
        Date::now().as_millis() as i64
    }

    fn pause(&self, duration: Duration) -> LocalBoxFuture<'_, ()> {
        Box::pin(Delay::from(duration))
    }
}

/// A Worker secret or variable; both arrive as strings on `env`.
pub fn env_string(env: &Env, name: &str) -> Option<String> {
    env.secret(name).map(|s| s.to_string()).or_else(|_| env.var(name).map(|v| v.to_string())).ok()
}

/// The deployment's settings, from its variables; the same for requests and the cron.
pub fn settings(env: &Env) -> Result<Settings, String> {
    let var = |name: &str| env.var(name).ok().map(|v| v.to_string());
    Settings::from_vars(var("KEY_PREFIX").as_deref(), var("ALLOW_INSECURE_PROVIDER_HOSTS").as_deref())?
        .with_credit_day(var("CREDIT_DAY_MS").as_deref())
}

/// The key authority: one Durable Object per workspace (or `AUTHORITY_SHARDS` per workspace,
/// 1 to 64), named under `AUTHORITY_EPOCH`, and whether it answers authentication.
/// `KEY_AUTHORITY=object` (the default) says it does; `catalogue` has D1 answer, for comparison
/// and as a way back, while every write still keeps the objects up to date.
fn key_authority(env: &Env, d1_statements: &Rc<Cell<usize>>) -> Result<(DurableAuthority, bool), String> {
    let shards = match env_string(env, "AUTHORITY_SHARDS") {
        None => 1,
        Some(text) => text.trim().parse::<u32>().ok().filter(|n| (1..=64).contains(n)).ok_or("AUTHORITY_SHARDS must be 1 to 64")?,
    };
    let epoch = env_string(env, "AUTHORITY_EPOCH").map(|text| text.trim().to_string()).unwrap_or_else(|| "1".to_string());
    if !(1..=32).contains(&epoch.len()) || !epoch.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("AUTHORITY_EPOCH must be 1 to 32 letters or digits".to_string());
    }
    let authenticates = match env_string(env, "KEY_AUTHORITY").as_deref().map(str::trim) {
        None | Some("") | Some("object") => true,
        Some("catalogue") => false,
        Some(other) => return Err(format!("KEY_AUTHORITY must be `object` or `catalogue`, not {other:?}")),
    };
    Ok((DurableAuthority::from_env(env, Layout { epoch, shards }, d1_statements.clone())?, authenticates))
}

impl Bindings {
    /// A missing D1 or KV binding, or invalid settings, is a deployment error: every route
    /// that gets this far answers 500 and the log says which.
    pub fn from_env(env: &Env, request_id: Option<&str>) -> Result<Bindings, String> {
        let d1_statements = Rc::new(Cell::new(0));
        let store = D1Store::counting(env.d1("DB").map_err(|e| format!("the DB binding: {e}"))?, d1_statements.clone());
        let (authority, authenticates) = key_authority(env, &d1_statements)?;
        let store = store.with_authority(Rc::new(authority), authenticates);
        let blobs = KvBlobs::new(env.kv("SECRETS").map_err(|e| format!("the SECRETS binding: {e}"))?);
        let keks = match env_string(env, "VAULT_KEKS") {
            Some(text) => Keks::parse(&text).map_err(|e| format!("VAULT_KEKS: {e}")),
            None => Err("VAULT_KEKS is not set".to_string()),
        };
        let mut client = FetchClient { request_id: request_id.map(str::to_string), ..FetchClient::default() };
        // `PROVIDER_TIMEOUT_MS` shortens the 10 s provider timeout in tests; it never lengthens it.
        if let Some(ms) = env_string(env, "PROVIDER_TIMEOUT_MS").and_then(|v| v.trim().parse::<u64>().ok()) {
            client.timeout = client.timeout.min(Duration::from_millis(ms.max(1)));
        }
        Ok(Bindings { store, d1_statements, blobs, client, keks, settings: settings(env)? })
    }

    pub fn deps(&self, now_ms: i64) -> LiveDeps<'_> {
        Deps::new(&self.store, &self.blobs, &self.client, self.keks.as_ref().map_err(String::as_str), &self.settings, now_ms, &WorkerClock)
    }

    /// The D1 statements sent so far for this request (work after the response not included).
    pub fn d1_statements(&self) -> usize {
        self.d1_statements.get()
    }

    pub fn has_keks(&self) -> bool {
        self.keks.is_ok()
    }
}
