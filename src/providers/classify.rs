//! What a provider's answer to the probe means, per provider family: a pure function of the
//! status, the headers and the body, so that every provider's real error bodies can be tested
//! in a table.
//!
//! The line that matters most is between a key that is wrong and a key that is right but may
//! not do this. A 401, and a 403 that says the credential itself is bad, is `InvalidKey`; a 403
//! whose body says the key authenticated but lacks a permission, a scope or an enabled API is
//! `Restricted`, and a refusal by region is `RegionUnsupported`. Calling those "invalid" sends
//! people to regenerate a key that was fine.

use serde_json::Value;

use super::catalog::Family;

/// When a rate-limited provider does not say how long to wait.
const DEFAULT_RETRY_AFTER: u64 = 30;
/// Error bodies are small; a larger one is not parsed for its reason.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
/// A provider's reason longer than this is not a machine-readable code: it is cut.
const MAX_REASON_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResponse {
    pub status: u16,
    /// Lowercase names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ProbeResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The key works. Whether it is offered the wanted models, and its funds, are read
    /// afterwards.
    Accepted,
    InvalidKey {
        provider_status: u16,
    },
    /// The key authenticated but may not list models: a missing scope or role, a disabled
    /// API, a key restricted to other APIs or addresses. `reason` is the provider's own code.
    Restricted {
        provider_status: u16,
        reason: String,
    },
    /// The provider refuses to serve the region the request came from.
    RegionUnsupported {
        provider_status: u16,
        reason: String,
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

/// What an error body says, in the fields providers put their machine-readable reasons in.
#[derive(Debug, Default)]
struct Said {
    /// OpenAI's and Azure's `error.code`, Google's `error.status`.
    code: Option<String>,
    /// OpenAI's and Anthropic's `error.type`.
    kind: Option<String>,
    /// Google's `error.details[].reason` (ErrorInfo).
    reasons: Vec<String>,
    /// AWS's `__type`, the exception's name without its namespace, when the body carries it.
    aws_type: Option<String>,
    /// Lowercase.
    message: String,
}

impl Said {
    fn read(body: &str) -> Said {
        if body.len() > MAX_ERROR_BODY_BYTES {
            return Said::default();
        }
        let Ok(value) = serde_json::from_str::<Value>(body) else {
            return Said { message: body.to_ascii_lowercase(), ..Said::default() };
        };
        // Gemini's OpenAI-compatible endpoint wraps google.rpc.Status in an array.
        let value = match value {
            Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
            other => other,
        };
        // OpenAI has also answered `{"error": "<message>"}`.
        if let Some(Value::String(message)) = value.get("error") {
            return Said { message: message.to_ascii_lowercase(), ..Said::default() };
        }
        let error = value.get("error").unwrap_or(&value);
        let text = |v: Option<&Value>| match v {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let code = text(error.get("code")).or_else(|| text(error.get("status")));
        let reasons = error
            .get("details")
            .and_then(Value::as_array)
            .map(|details| details.iter().filter_map(|d| text(d.get("reason"))).collect())
            .unwrap_or_default();
        let message = text(error.get("message")).or_else(|| text(value.get("message"))).or_else(|| text(value.get("Message")));
        // "com.amazon.coral.service#AccessDeniedException", or the bare name.
        let aws_type =
            text(value.get("__type")).map(|t| t.rsplit('#').next().unwrap_or(&t).split(':').next().unwrap_or_default().to_string());
        Said { code, kind: text(error.get("type")), reasons, aws_type, message: message.unwrap_or_default().to_ascii_lowercase() }
    }

    fn has_reason(&self, reason: &str) -> bool {
        self.reasons.iter().any(|r| r == reason)
    }

    fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    fn kind_is(&self, kind: &str) -> bool {
        self.kind.as_deref() == Some(kind)
    }

    fn mentions(&self, phrase: &str) -> bool {
        self.message.contains(phrase)
    }
}

fn reason(text: &str) -> String {
    text.chars().take(MAX_REASON_CHARS).collect()
}

/// Google's ErrorInfo reasons for a key that is real but restricted, or whose project has not
/// enabled the API.
const GOOGLE_RESTRICTIONS: [&str; 8] = [
    "SERVICE_DISABLED",
    "API_KEY_SERVICE_BLOCKED",
    "API_KEY_HTTP_REFERRER_BLOCKED",
    "API_KEY_IP_ADDRESS_BLOCKED",
    "API_KEY_ANDROID_APP_BLOCKED",
    "API_KEY_IOS_APP_BLOCKED",
    "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
    "IAM_PERMISSION_DENIED",
];

/// What Google's messages say when `details` is missing, and the reason each stands for.
const GOOGLE_RESTRICTION_MESSAGES: [(&str, &str); 4] = [
    ("before or it is disabled", "SERVICE_DISABLED"),
    ("requests to this api", "API_KEY_SERVICE_BLOCKED"),
    ("requests from referer", "API_KEY_HTTP_REFERRER_BLOCKED"),
    ("has an ip address restriction", "API_KEY_IP_ADDRESS_BLOCKED"),
];

/// AWS exceptions that say the credential itself is wrong.
const AWS_BAD_CREDENTIALS: [&str; 5] = [
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "MissingAuthenticationTokenException",
];

/// A refusal that is not about the credential: `None` leaves the answer to the status rules.
fn refusal(family: Family, response: &ProbeResponse, said: &Said) -> Option<Outcome> {
    let provider_status = response.status;
    let restricted = |why: &str| Some(Outcome::Restricted { provider_status, reason: reason(why) });
    let region = |why: &str| Some(Outcome::RegionUnsupported { provider_status, reason: reason(why) });
    match family {
        Family::OpenAiStyle => {
            if said.code_is("unsupported_country_region_territory") {
                return region("unsupported_country_region_territory");
            }
            // A restricted key without a scope: "You have insufficient permissions for this
            // operation. Missing scopes: api.model.read."
            if said.mentions("insufficient permissions") || said.mentions("missing scopes") || said.code_is("insufficient_permissions") {
                return restricted(said.code.as_deref().unwrap_or("insufficient_permissions"));
            }
            None
        }
        Family::Gemini => {
            if let Some(found) = GOOGLE_RESTRICTIONS.iter().find(|r| said.has_reason(r)) {
                return restricted(found);
            }
            // The OpenAI-compatible endpoint often drops `details`: the message still says which.
            if let Some((_, found)) = GOOGLE_RESTRICTION_MESSAGES.iter().find(|(phrase, _)| said.mentions(phrase)) {
                return restricted(found);
            }
            if said.mentions("location is not supported") || said.mentions("restricted from your billing country") {
                return region(said.code.as_deref().unwrap_or("FAILED_PRECONDITION"));
            }
            None
        }
        Family::Anthropic => {
            if said.kind_is("permission_error") {
                return restricted("permission_error");
            }
            if said.kind_is("forbidden") || said.mentions("request not allowed") {
                return region(said.kind.as_deref().unwrap_or("forbidden"));
            }
            None
        }
        Family::Azure => {
            if said.code_is("PermissionDenied") || said.mentions("does not have permissions") || said.mentions("principal does not have") {
                return restricted(said.code.as_deref().unwrap_or("PermissionDenied"));
            }
            if said.mentions("firewall") || said.mentions("private endpoint") || said.mentions("virtual network") {
                return restricted(said.code.as_deref().filter(|c| *c != "403").unwrap_or("network_restricted"));
            }
            None
        }
        Family::Bedrock => {
            // The header names the exception; without it, the body's `__type` does.
            let exception = response.header("x-amzn-errortype").map(|t| t.split(':').next().unwrap_or(t)).or(said.aws_type.as_deref());
            match exception {
                Some(name) if AWS_BAD_CREDENTIALS.contains(&name) => None,
                // Bedrock's own API keys are refused as AccessDeniedException too.
                Some("AccessDeniedException") if said.mentions("authentication failed") => None,
                Some("AccessDeniedException") => restricted("AccessDeniedException"),
                _ => None,
            }
        }
        Family::OpenRouter => None,
    }
}

pub fn classify(family: Family, response: &ProbeResponse) -> Outcome {
    let status = response.status;
    if (200..300).contains(&status) {
        return accepted(family, &response.body);
    }
    let said = Said::read(&response.body);
    if matches!(status, 400 | 401 | 403) {
        if let Some(outcome) = refusal(family, response, &said) {
            return outcome;
        }
    }
    match status {
        403 if family == Family::Azure && said.mentions("out of call volume quota") => Outcome::QuotaExceeded { provider_status: status },
        401 | 403 => Outcome::InvalidKey { provider_status: status },
        // The OpenAI-compatible endpoint may drop `details`; its message still says so.
        400 if family == Family::Gemini
            && (said.has_reason("API_KEY_INVALID") || said.mentions("api key not valid") || said.mentions("api key expired")) =>
        {
            Outcome::InvalidKey { provider_status: status }
        }
        400 if family == Family::Anthropic && mentions_billing(&said.message) => Outcome::QuotaExceeded { provider_status: status },
        402 => Outcome::QuotaExceeded { provider_status: status },
        429 if said.code_is("insufficient_quota") || said.kind_is("insufficient_quota") || mentions_billing(&said.message) => {
            Outcome::QuotaExceeded { provider_status: status }
        }
        429 => Outcome::RateLimited { provider_status: status, retry_after: retry_after(response) },
        _ => Outcome::Unavailable { provider_status: Some(status) },
    }
}

fn mentions_billing(lowercase: &str) -> bool {
    lowercase.contains("credit balance") || lowercase.contains("billing") || lowercase.contains("exceeded your current quota")
}

fn retry_after(response: &ProbeResponse) -> u64 {
    response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map_or(DEFAULT_RETRY_AFTER, |seconds| seconds.clamp(1, 3600))
}

fn accepted(family: Family, body: &str) -> Outcome {
    // A key whose credit limit is used up answers 200 but cannot serve a request.
    if family == Family::OpenRouter && super::funds::openrouter(body, 0).is_some_and(|funds| funds.remaining <= 0.0) {
        return Outcome::QuotaExceeded { provider_status: 200 };
    }
    Outcome::Accepted
}

#[cfg(test)]
mod tests {
    //! The providers' real answers (from their docs and from responses users pasted in public
    //! issues), each with the outcome it must have. Identifiers are shortened.
    use super::*;
    use Family::*;

    fn answer(status: u16, body: &str) -> ProbeResponse {
        ProbeResponse { status, headers: vec![], body: body.to_string() }
    }

    fn aws(status: u16, error_type: &str, body: &str) -> ProbeResponse {
        ProbeResponse { status, headers: vec![("x-amzn-errortype".into(), error_type.into())], body: body.to_string() }
    }

    fn invalid(provider_status: u16) -> Outcome {
        Outcome::InvalidKey { provider_status }
    }

    fn restricted(provider_status: u16, reason: &str) -> Outcome {
        Outcome::Restricted { provider_status, reason: reason.into() }
    }

    fn region(provider_status: u16, reason: &str) -> Outcome {
        Outcome::RegionUnsupported { provider_status, reason: reason.into() }
    }

    fn quota(provider_status: u16) -> Outcome {
        Outcome::QuotaExceeded { provider_status }
    }

    fn check(table: Vec<(&str, Family, ProbeResponse, Outcome)>) {
        for (case, family, response, expected) in table {
            assert_eq!(classify(family, &response), expected, "{case}: {family:?} {} {}", response.status, response.body);
        }
    }

    #[test]
    fn openai_style_answers() {
        check(vec![
            (
                "invalid key",
                OpenAiStyle,
                answer(
                    401,
                    r#"{"error":{"message":"Incorrect API key provided: sk-4sJH***w8ZP. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
                ),
                invalid(401),
            ),
            (
                "restricted key without the models scope",
                OpenAiStyle,
                answer(
                    401,
                    r#"{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you have the correct role in your organization (Reader, Writer, Owner) and project (Member, Owner), and if you're using a restricted API key, that it has the necessary scopes.","type":"invalid_request_error","param":null,"code":null}}"#,
                ),
                restricted(401, "insufficient_permissions"),
            ),
            (
                "missing scopes as a plain string",
                OpenAiStyle,
                answer(401, r#"{"error": "You have insufficient permissions for this operation. Missing scopes: api.model.read."}"#),
                restricted(401, "insufficient_permissions"),
            ),
            (
                "missing scopes answered 403",
                OpenAiStyle,
                answer(
                    403,
                    r#"{"error":{"message":"You have insufficient permissions for this operation. Missing scopes: api.model.read.","type":"invalid_request_error","param":null,"code":null}}"#,
                ),
                restricted(403, "insufficient_permissions"),
            ),
            (
                "region",
                OpenAiStyle,
                answer(
                    403,
                    r#"{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}"#,
                ),
                region(403, "unsupported_country_region_territory"),
            ),
            (
                "another 403",
                OpenAiStyle,
                answer(
                    403,
                    r#"{"error":{"message":"You do not have access to the organization tied to the API key.","type":"invalid_request_error","param":null,"code":null}}"#,
                ),
                invalid(403),
            ),
            (
                "quota",
                OpenAiStyle,
                answer(
                    429,
                    r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
                ),
                quota(429),
            ),
            (
                "rate limit",
                OpenAiStyle,
                answer(
                    429,
                    r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#,
                ),
                Outcome::RateLimited { provider_status: 429, retry_after: 30 },
            ),
            (
                "server error",
                OpenAiStyle,
                answer(
                    500,
                    r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
                ),
                Outcome::Unavailable { provider_status: Some(500) },
            ),
            ("accepted", OpenAiStyle, answer(200, r#"{"object":"list","data":[{"id":"gpt-4o"}]}"#), Outcome::Accepted),
        ]);
    }

    #[test]
    fn gemini_answers() {
        check(vec![
            (
                "invalid key",
                Gemini,
                answer(
                    400,
                    r#"[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}]"#,
                ),
                invalid(400),
            ),
            (
                "invalid key on the OpenAI-compatible endpoint, without details",
                Gemini,
                answer(
                    400,
                    r#"[{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}]"#,
                ),
                invalid(400),
            ),
            (
                "expired key",
                Gemini,
                answer(
                    400,
                    r#"{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
                ),
                invalid(400),
            ),
            (
                "API disabled in the project",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Generative Language API has not been used in project 445009168042 before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/generativelanguage.googleapis.com/overview?project=445009168042 then retry.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com","consumer":"projects/445009168042"}}]}}"#,
                ),
                restricted(403, "SERVICE_DISABLED"),
            ),
            (
                "API disabled, without details",
                Gemini,
                answer(
                    403,
                    r#"[{"error":{"code":403,"message":"Gemini API has not been used in project 1 before or it is disabled.","status":"PERMISSION_DENIED"}}]"#,
                ),
                restricted(403, "SERVICE_DISABLED"),
            ),
            (
                "key restricted to other APIs",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Requests to this API generativelanguage.googleapis.com method google.ai.generativelanguage.v1beta.ModelService.ListModels are blocked.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_SERVICE_BLOCKED","domain":"googleapis.com"}]}}"#,
                ),
                restricted(403, "API_KEY_SERVICE_BLOCKED"),
            ),
            (
                "key restricted to referrers",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Requests from referer <empty> are blocked.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_HTTP_REFERRER_BLOCKED","domain":"googleapis.com"}]}}"#,
                ),
                restricted(403, "API_KEY_HTTP_REFERRER_BLOCKED"),
            ),
            (
                "key restricted to addresses",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"The provided API key has an IP address restriction. The originating IP address of the call (1.2.3.4) violates this restriction.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_IP_ADDRESS_BLOCKED","domain":"googleapis.com"}]}}"#,
                ),
                restricted(403, "API_KEY_IP_ADDRESS_BLOCKED"),
            ),
            (
                "location",
                Gemini,
                answer(
                    400,
                    r#"[{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}]"#,
                ),
                region(400, "FAILED_PRECONDITION"),
            ),
            (
                "billing country",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Access to generativelanguage.googleapis.com is restricted from your billing country and was denied for this project.","status":"PERMISSION_DENIED"}}"#,
                ),
                region(403, "PERMISSION_DENIED"),
            ),
            (
                "suspended consumer",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Permission denied: Consumer 'api_key:AIza' has been suspended.","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED","domain":"googleapis.com"}]}}"#,
                ),
                invalid(403),
            ),
            (
                "leaked key",
                Gemini,
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}"#,
                ),
                invalid(403),
            ),
            (
                "quota",
                Gemini,
                answer(
                    429,
                    r#"[{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED"}}]"#,
                ),
                quota(429),
            ),
            (
                "rate limit",
                Gemini,
                answer(
                    429,
                    r#"[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}]"#,
                ),
                Outcome::RateLimited { provider_status: 429, retry_after: 30 },
            ),
            (
                "overloaded",
                Gemini,
                answer(
                    503,
                    r#"[{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]"#,
                ),
                Outcome::Unavailable { provider_status: Some(503) },
            ),
        ]);
    }

    #[test]
    fn anthropic_answers() {
        check(vec![
            (
                "invalid key",
                Anthropic,
                answer(401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
                invalid(401),
            ),
            (
                "permission",
                Anthropic,
                answer(
                    403,
                    r#"{"type":"error","error":{"type":"permission_error","message":"Permission denied"},"request_id":"req_011CaH53rCYtDAVnwhLQvkuc"}"#,
                ),
                restricted(403, "permission_error"),
            ),
            (
                "region",
                Anthropic,
                answer(403, r#"{"error":{"type":"forbidden","message":"Request not allowed"}}"#),
                region(403, "forbidden"),
            ),
            (
                "credit balance",
                Anthropic,
                answer(
                    400,
                    r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
                ),
                quota(400),
            ),
            (
                "missing version",
                Anthropic,
                answer(
                    400,
                    r#"{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}}"#,
                ),
                Outcome::Unavailable { provider_status: Some(400) },
            ),
            (
                "overloaded",
                Anthropic,
                answer(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
                Outcome::Unavailable { provider_status: Some(529) },
            ),
        ]);
    }

    #[test]
    fn bedrock_answers() {
        let coral = |name: &str| format!("{name}:http://internal.amazon.com/coral/com.amazon.coral.service/");
        check(vec![
            (
                "unknown access key",
                Bedrock,
                aws(403, &coral("UnrecognizedClientException"), r#"{"message":"The security token included in the request is invalid."}"#),
                invalid(403),
            ),
            (
                "wrong secret",
                Bedrock,
                aws(
                    403,
                    &coral("InvalidSignatureException"),
                    r#"{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."}"#,
                ),
                invalid(403),
            ),
            (
                "expired token",
                Bedrock,
                aws(403, &coral("ExpiredTokenException"), r#"{"message":"The security token included in the request is expired"}"#),
                invalid(403),
            ),
            (
                "no ListFoundationModels permission",
                Bedrock,
                aws(
                    403,
                    &coral("AccessDeniedException"),
                    r#"{"Message":"User: arn:aws:iam::123456789012:user/x is not authorized to perform: bedrock:ListFoundationModels because no identity-based policy allows the bedrock:ListFoundationModels action"}"#,
                ),
                restricted(403, "AccessDeniedException"),
            ),
            (
                "a Bedrock API key that fails",
                Bedrock,
                aws(
                    403,
                    &coral("AccessDeniedException"),
                    r#"{"Message":"Authentication failed: Please make sure your API Key is valid."}"#,
                ),
                invalid(403),
            ),
            (
                "no permission, named by the body's __type alone",
                Bedrock,
                answer(
                    403,
                    r#"{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:iam::123456789012:user/x is not authorized to perform: bedrock:ListFoundationModels"}"#,
                ),
                restricted(403, "AccessDeniedException"),
            ),
            (
                "wrong secret, named by the body's __type alone",
                Bedrock,
                answer(
                    403,
                    r#"{"__type":"InvalidSignatureException","message":"The request signature we calculated does not match the signature you provided."}"#,
                ),
                invalid(403),
            ),
            (
                "throttled",
                Bedrock,
                aws(429, "ThrottlingException", r#"{"message":"Too many requests, please wait before trying again."}"#),
                Outcome::RateLimited { provider_status: 429, retry_after: 30 },
            ),
        ]);
    }

    #[test]
    fn azure_answers() {
        check(vec![
            (
                "invalid key",
                Azure,
                answer(
                    401,
                    r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#,
                ),
                invalid(401),
            ),
            (
                "principal without access",
                Azure,
                answer(401, r#"{"error":{"code":"PermissionDenied","message":"Principal does not have access to API/Operation."}}"#),
                restricted(401, "PermissionDenied"),
            ),
            (
                "firewall",
                Azure,
                answer(403, r#"{"error":{"code":"403","message":"Access denied due to Virtual Network/Firewall rules."}}"#),
                restricted(403, "network_restricted"),
            ),
            (
                "public access disabled",
                Azure,
                answer(
                    403,
                    r#"{"error":{"code":"AccessDenied","message":"Public access is disabled. Please configure private endpoint."}}"#,
                ),
                restricted(403, "AccessDenied"),
            ),
            (
                "virtual network without a wrapper",
                Azure,
                answer(
                    403,
                    r#"{"code":"403","message":"A Virtual Network is configured for this resource. Please use the correct endpoint for making requests."}"#,
                ),
                restricted(403, "network_restricted"),
            ),
            (
                "call volume quota",
                Azure,
                answer(
                    403,
                    r#"{"error":{"code":"403","message":"Out of call volume quota for OpenAI API. Quota will be replenished in 2.12:16:11."}}"#,
                ),
                quota(403),
            ),
        ]);
    }

    #[test]
    fn openrouter_answers() {
        check(vec![
            ("invalid key", OpenRouter, answer(401, r#"{"error":{"message":"No auth credentials found","code":401}}"#), invalid(401)),
            ("no credits", OpenRouter, answer(402, r#"{"error":{"message":"Insufficient credits","code":402}}"#), quota(402)),
            (
                "limit spent",
                OpenRouter,
                answer(200, r#"{"data":{"label":"sk-or-v1-116...0ce","limit":5,"usage":5,"limit_remaining":0,"is_free_tier":false}}"#),
                quota(200),
            ),
            (
                "limit left",
                OpenRouter,
                answer(
                    200,
                    r#"{"data":{"label":"sk-or-v1-116...0ce","limit":5,"usage":0.1015644762,"limit_remaining":4.8984355238,"is_free_tier":false}}"#,
                ),
                Outcome::Accepted,
            ),
            (
                "no limit",
                OpenRouter,
                answer(200, r#"{"data":{"label":"x","limit":null,"usage":0.42,"limit_remaining":null}}"#),
                Outcome::Accepted,
            ),
        ]);
    }

    #[test]
    fn a_reason_is_cut_to_a_code_length() {
        let long = format!(r#"{{"error":{{"code":"{}","message":"Country, region, or territory not supported"}}}}"#, "x".repeat(500));
        let Outcome::Restricted { reason, .. } =
            classify(Azure, &answer(403, &long.replace("Country, region, or territory not supported", "behind a firewall")))
        else {
            panic!("expected restricted")
        };
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
    }
}
