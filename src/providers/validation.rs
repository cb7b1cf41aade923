//! Live validation as pure functions: the cheapest request that proves a key, per provider
//! family, and the outcome a response means. The HTTP adapter only performs the request.

use serde_json::{Map, Value};

use super::catalog::{Family, ProviderId, AZURE_API_VERSION};
use super::host::ApiHost;
use super::model_list;
use crate::crypto::sigv4;

/// How long a provider may take to answer a validation request.
pub const TIMEOUT_MS: u64 = 10_000;
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
const USER_AGENT: &str = concat!("keywarden/", env!("CARGO_PKG_VERSION"));
/// When a rate-limited provider does not say how long to wait.
const DEFAULT_RETRY_AFTER: u64 = 30;

/// A request to a provider. It carries the key, so it never prints its headers.
#[derive(Clone, PartialEq, Eq)]
pub struct ProbeRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for ProbeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "GET {} (headers: {names:?})", self.url)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ProbeResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What is validated: the key with everything it will be used with.
#[derive(Clone)]
pub struct Candidate<'a> {
    pub provider: ProviderId,
    pub api_key: &'a str,
    pub host: &'a ApiHost,
    pub config: &'a Map<String, Value>,
    pub model: Option<&'a str>,
    pub fallback_model: Option<&'a str>,
}

impl Candidate<'_> {
    fn config_str(&self, name: &str) -> Option<&str> {
        self.config.get(name).and_then(Value::as_str)
    }
}

fn header(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

/// The one request that proves the key for its provider.
pub fn probe_request(candidate: &Candidate, now_ms: i64) -> ProbeRequest {
    let agent = header("user-agent", USER_AGENT);
    let bearer = || header("authorization", format!("Bearer {}", candidate.api_key));
    match candidate.provider.family() {
        Family::OpenAiStyle | Family::Gemini => ProbeRequest { url: candidate.host.join("/models"), headers: vec![bearer(), agent] },
        Family::Anthropic => ProbeRequest {
            // The first page holds 20 models by default: ask for all, so no offered model is missed.
            url: candidate.host.join("/v1/models?limit=1000"),
            headers: vec![header("x-api-key", candidate.api_key), header("anthropic-version", ANTHROPIC_VERSION), agent],
        },
        Family::OpenRouter => ProbeRequest { url: candidate.host.join("/key"), headers: vec![bearer(), agent] },
        Family::Azure => {
            let version = candidate.config_str("api_version").unwrap_or(AZURE_API_VERSION);
            let url = format!("{}?api-version={}", candidate.host.join("/openai/models"), url_encode(version));
            ProbeRequest { url, headers: vec![header("api-key", candidate.api_key), agent] }
        }
        Family::Bedrock => bedrock_request(candidate, now_ms, agent),
    }
}

fn bedrock_request(candidate: &Candidate, now_ms: i64, agent: (String, String)) -> ProbeRequest {
    let url = candidate.host.join("/foundation-models");
    let parsed = url::Url::parse(&url).ok();
    let host = parsed
        .as_ref()
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        })
        .unwrap_or_default();
    let path = parsed.as_ref().map_or("/foundation-models".to_string(), |u| u.path().to_string());
    let request = sigv4::SigningRequest { method: "GET", host: &host, path: &path, query: &[], headers: &[], payload: b"" };
    let credentials = sigv4::Credentials {
        access_key_id: candidate.config_str("access_key_id").unwrap_or_default(),
        secret_access_key: candidate.api_key,
        session_token: None,
    };
    let region = candidate.config_str("region").unwrap_or_default();
    let mut headers = sigv4::sign(&request, &credentials, region, "bedrock", &sigv4::amz_date(now_ms));
    headers.push(agent);
    ProbeRequest { url, headers }
}

/// OpenRouter proves a key with `/key`, which lists no models; its public model list is asked
/// separately, and only when a model must be checked.
pub fn models_request(candidate: &Candidate) -> Option<ProbeRequest> {
    let wants_model = candidate.model.is_some() || candidate.fallback_model.is_some();
    (candidate.provider.family() == Family::OpenRouter && wants_model)
        .then(|| ProbeRequest { url: candidate.host.join("/models"), headers: vec![header("user-agent", USER_AGENT)] })
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What a provider's answer to the probe means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The key works. Whether it is offered the wanted models is read from the list afterwards,
    /// and only when a model is wanted.
    Accepted,
    InvalidKey {
        provider_status: u16,
    },
    QuotaExceeded {
        provider_status: u16,
    },
    RateLimited {
        provider_status: u16,
        retry_after: u64,
    },
    Unavailable {
        provider_status: Option<u16>,
    },
}

pub fn classify(family: Family, response: &ProbeResponse) -> Outcome {
    let status = response.status;
    let body = response.body.as_str();
    match status {
        200..=299 => accepted(family, body),
        401 | 403 => Outcome::InvalidKey { provider_status: status },
        400 if family == Family::Gemini && body.contains("API_KEY_INVALID") => Outcome::InvalidKey { provider_status: status },
        400 if family == Family::Anthropic && mentions_billing(body) => Outcome::QuotaExceeded { provider_status: status },
        402 => Outcome::QuotaExceeded { provider_status: status },
        429 if body.contains("insufficient_quota") || mentions_billing(body) => Outcome::QuotaExceeded { provider_status: status },
        429 => Outcome::RateLimited { provider_status: status, retry_after: retry_after(response) },
        _ => Outcome::Unavailable { provider_status: Some(status) },
    }
}

fn mentions_billing(body: &str) -> bool {
    let lower = body.to_ascii_lowercase();
    lower.contains("credit balance") || lower.contains("billing")
}

fn retry_after(response: &ProbeResponse) -> u64 {
    response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map_or(DEFAULT_RETRY_AFTER, |seconds| seconds.clamp(1, 3600))
}

/// OpenRouter's `/key` answer, read for the one field that matters: whatever else it holds
/// is skipped, never built into a tree.
#[derive(serde::Deserialize)]
struct KeyInfo {
    data: Option<KeyLimits>,
}

#[derive(serde::Deserialize)]
struct KeyLimits {
    limit_remaining: Option<f64>,
}

fn accepted(family: Family, body: &str) -> Outcome {
    if family == Family::OpenRouter {
        // A key whose credit limit is used up answers 200 but cannot serve a request.
        let remaining = serde_json::from_str::<KeyInfo>(body).ok().and_then(|info| info.data).and_then(|data| data.limit_remaining);
        if remaining.is_some_and(|left| left <= 0.0) {
            return Outcome::QuotaExceeded { provider_status: 200 };
        }
    }
    Outcome::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, body: Value) -> ProbeResponse {
        ProbeResponse { status, headers: vec![], body: body.to_string() }
    }

    fn candidate<'a>(provider: ProviderId, host: &'a ApiHost, config: &'a Map<String, Value>) -> Candidate<'a> {
        Candidate { provider, api_key: "sk-test-key", host, config, model: None, fallback_model: None }
    }

    #[test]
    fn openai_style_providers_are_probed_with_a_bearer_get_of_models() {
        let host = ApiHost::parse("https://api.deepseek.com/", false).unwrap();
        let config = Map::new();
        let request = probe_request(&candidate(ProviderId::DeepSeek, &host, &config), 0);
        assert_eq!(request.url, "https://api.deepseek.com/models");
        assert!(request.headers.contains(&header("authorization", "Bearer sk-test-key")));
    }

    #[test]
    fn anthropic_is_probed_with_x_api_key_and_its_version_header() {
        let host = ApiHost::parse("https://api.anthropic.com/", false).unwrap();
        let config = Map::new();
        let request = probe_request(&candidate(ProviderId::Anthropic, &host, &config), 0);
        assert_eq!(request.url, "https://api.anthropic.com/v1/models?limit=1000");
        assert!(request.headers.contains(&header("x-api-key", "sk-test-key")));
        assert!(request.headers.contains(&header("anthropic-version", "2023-06-01")));
        assert!(!request.headers.iter().any(|(n, _)| n == "authorization"));
    }

    #[test]
    fn openrouter_is_probed_at_key_not_its_public_model_list() {
        let host = ApiHost::parse("https://openrouter.ai/api/v1", false).unwrap();
        let config = Map::new();
        let mut probe = candidate(ProviderId::OpenRouter, &host, &config);
        assert_eq!(probe_request(&probe, 0).url, "https://openrouter.ai/api/v1/key");
        assert_eq!(models_request(&probe), None);
        probe.model = Some("openai/gpt-4o");
        assert_eq!(models_request(&probe).unwrap().url, "https://openrouter.ai/api/v1/models");
    }

    #[test]
    fn azure_is_probed_with_api_key_and_the_api_version() {
        let host = ApiHost::parse("https://res.openai.azure.com/", false).unwrap();
        let mut config = Map::new();
        let request = probe_request(&candidate(ProviderId::Azure, &host, &config), 0);
        assert_eq!(request.url, "https://res.openai.azure.com/openai/models?api-version=2024-10-21");
        assert!(request.headers.contains(&header("api-key", "sk-test-key")));
        config.insert("api_version".into(), json!("2024-02-15-preview"));
        let request = probe_request(&candidate(ProviderId::Azure, &host, &config), 0);
        assert!(request.url.ends_with("api-version=2024-02-15-preview"));
    }

    #[test]
    fn bedrock_is_probed_with_a_sigv4_signed_get() {
        let host = ApiHost::parse("https://bedrock.us-east-1.amazonaws.com", false).unwrap();
        let mut config = Map::new();
        config.insert("region".into(), json!("us-east-1"));
        config.insert("access_key_id".into(), json!("AKIDEXAMPLE"));
        let request = probe_request(&candidate(ProviderId::Bedrock, &host, &config), 1_440_938_160_000);
        assert_eq!(request.url, "https://bedrock.us-east-1.amazonaws.com/foundation-models");
        let authorization = &request.headers.iter().find(|(n, _)| n == "authorization").unwrap().1;
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=host;x-amz-date, Signature="
        ));
        assert!(request.headers.contains(&header("x-amz-date", "20150830T123600Z")));
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let host = ApiHost::parse("https://api.openai.com/v1", false).unwrap();
        let config = Map::new();
        let shown = format!("{:?}", probe_request(&candidate(ProviderId::OpenAi, &host, &config), 0));
        assert!(!shown.contains("sk-test-key"), "{shown}");
    }

    #[test]
    fn rejected_keys_are_invalid_key() {
        let openai =
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}});
        assert_eq!(classify(Family::OpenAiStyle, &response(401, openai)), Outcome::InvalidKey { provider_status: 401 });
        let anthropic = json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}});
        assert_eq!(classify(Family::Anthropic, &response(401, anthropic)), Outcome::InvalidKey { provider_status: 401 });
        assert_eq!(
            classify(Family::Bedrock, &response(403, json!({"message": "The security token included in the request is invalid."}))),
            Outcome::InvalidKey { provider_status: 403 }
        );
        let gemini = json!([{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT", "details": [{"reason": "API_KEY_INVALID"}]}}]);
        assert_eq!(classify(Family::Gemini, &response(400, gemini)), Outcome::InvalidKey { provider_status: 400 });
    }

    #[test]
    fn billing_and_quota_answers_are_quota_exceeded() {
        let openai =
            json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}});
        assert_eq!(classify(Family::OpenAiStyle, &response(429, openai)), Outcome::QuotaExceeded { provider_status: 429 });
        let anthropic = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "Your credit balance is too low to access the Anthropic API."}});
        assert_eq!(classify(Family::Anthropic, &response(400, anthropic)), Outcome::QuotaExceeded { provider_status: 400 });
        assert_eq!(
            classify(Family::OpenRouter, &response(402, json!({"error": {"message": "Insufficient credits", "code": 402}}))),
            Outcome::QuotaExceeded { provider_status: 402 }
        );
        let exhausted = json!({"data": {"label": "x", "limit": 10, "usage": 10, "limit_remaining": 0}});
        assert_eq!(classify(Family::OpenRouter, &response(200, exhausted)), Outcome::QuotaExceeded { provider_status: 200 });
    }

    #[test]
    fn plain_rate_limits_keep_the_providers_retry_after() {
        let mut limited = response(429, json!({"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}));
        limited.headers.push(("retry-after".into(), "7".into()));
        assert_eq!(classify(Family::OpenAiStyle, &limited), Outcome::RateLimited { provider_status: 429, retry_after: 7 });
        let bare = response(429, json!({"type": "error", "error": {"type": "rate_limit_error"}}));
        assert_eq!(classify(Family::Anthropic, &bare), Outcome::RateLimited { provider_status: 429, retry_after: 30 });
    }

    #[test]
    fn server_errors_and_overload_are_unavailable() {
        for status in [500, 502, 503, 529] {
            assert_eq!(classify(Family::Anthropic, &response(status, json!({}))), Outcome::Unavailable { provider_status: Some(status) });
        }
        assert_eq!(
            classify(Family::Anthropic, &response(400, json!({"error": "anthropic-version: header is required"}))),
            Outcome::Unavailable { provider_status: Some(400) }
        );
    }

    #[test]
    fn an_openrouter_key_with_credit_left_or_no_limit_is_accepted() {
        for body in [json!({"data": {"label": "x", "limit_remaining": null}}), json!({"data": {"limit_remaining": 3.5}}), json!({})] {
            assert_eq!(classify(Family::OpenRouter, &response(200, body.clone())), Outcome::Accepted, "{body}");
        }
    }
}

/// Why a provider could not be asked at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportFailure {
    Timeout,
    Network,
    /// The answer declared or sent more than `model_list::MAX_ANSWER_BYTES`; it was not read.
    TooLarge,
}

/// Performs a probe request; the Worker's adapter uses `fetch` with the timeout above.
#[allow(async_fn_in_trait)]
pub trait ProviderClient {
    async fn send(&self, request: &ProbeRequest) -> Result<ProbeResponse, TransportFailure>;
}

/// Proves the key live, then that `model` and `fallback_model` are offered to it. Every
/// outcome maps to one of the contract's errors.
pub async fn validate_live(client: &impl ProviderClient, candidate: &Candidate<'_>, now_ms: i64) -> Result<(), crate::error::ApiError> {
    use crate::error::ApiError;
    let family = candidate.provider.family();
    let (outcome, probed) = match client.send(&probe_request(candidate, now_ms)).await {
        Ok(response) => (classify(family, &response), Some(response)),
        Err(_) => (Outcome::Unavailable { provider_status: None }, None),
    };
    let probed = match (outcome, probed) {
        (Outcome::Accepted, probed) => probed,
        (Outcome::InvalidKey { provider_status }, _) => return Err(ApiError::InvalidKey { provider_status }),
        (Outcome::QuotaExceeded { provider_status }, _) => return Err(ApiError::QuotaExceeded { provider_status }),
        (Outcome::RateLimited { retry_after, .. }, _) => return Err(ApiError::ProviderRateLimited { retry_after }),
        (Outcome::Unavailable { provider_status }, _) => return Err(ApiError::ProviderUnavailable { provider_status }),
    };
    let wanted: Vec<(&str, &str)> =
        [("model", candidate.model), ("fallback_model", candidate.fallback_model)].into_iter().filter_map(|(f, m)| Some((f, m?))).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let list = match models_request(candidate) {
        Some(request) => match client.send(&request).await {
            Ok(response) if (200..300).contains(&response.status) => response.body,
            Ok(response) => return Err(ApiError::ProviderUnavailable { provider_status: Some(response.status) }),
            Err(_) => return Err(ApiError::ProviderUnavailable { provider_status: None }),
        },
        None => probed.map(|response| response.body).unwrap_or_default(),
    };
    let models: Vec<&str> = wanted.iter().map(|(_, model)| *model).collect();
    // A model was named but no list could be read: it cannot be proven, so nothing is stored.
    let Some(offered) = model_list::offered(&list, &models) else { return Err(ApiError::ProviderUnavailable { provider_status: None }) };
    match wanted.iter().zip(offered).find(|(_, offered)| !offered) {
        Some(((field, _), _)) => Err(ApiError::InvalidModel { field: field.to_string() }),
        None => Ok(()),
    }
}
