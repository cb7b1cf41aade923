//! The providers keywarden validates and resolves keys for, and what each needs.

use serde_json::{json, Value};

/// How a provider proves a key: which request, which auth header, which error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `GET {host}/models` with `Authorization: Bearer`.
    OpenAiStyle,
    /// Gemini's OpenAI-compatible endpoint: OpenAI's request, Google's error shape.
    Gemini,
    /// `GET {host}/v1/models` with `x-api-key` and `anthropic-version`.
    Anthropic,
    /// `GET {host}/key`: its model list is public and proves nothing about a key.
    OpenRouter,
    /// `GET {host}/openai/models?api-version=` with `api-key`.
    Azure,
    /// `GET {host}/foundation-models` signed with AWS Signature V4.
    Bedrock,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderId {
    OpenAi,
    Anthropic,
    Gemini,
    OpenRouter,
    OrcaRouter,
    Qwen,
    DeepSeek,
    MiniMax,
    Zai,
    Azure,
    Bedrock,
    OpenAiCompatible,
}

/// A field a provider's `config` takes.
#[derive(Debug, Clone, Copy)]
pub struct ConfigField {
    pub name: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub description: &'static str,
}

pub const AZURE_API_VERSION: &str = "2024-10-21";

impl ProviderId {
    pub const ALL: [ProviderId; 12] = [
        ProviderId::OpenAi,
        ProviderId::Anthropic,
        ProviderId::Gemini,
        ProviderId::OpenRouter,
        ProviderId::OrcaRouter,
        ProviderId::Qwen,
        ProviderId::DeepSeek,
        ProviderId::MiniMax,
        ProviderId::Zai,
        ProviderId::Azure,
        ProviderId::Bedrock,
        ProviderId::OpenAiCompatible,
    ];

    /// Parses a provider id; `claude` is Anthropic's alias.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "claude" {
            return Some(ProviderId::Anthropic);
        }
        ProviderId::ALL.into_iter().find(|p| p.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "openai",
            ProviderId::Anthropic => "anthropic",
            ProviderId::Gemini => "gemini",
            ProviderId::OpenRouter => "openrouter",
            ProviderId::OrcaRouter => "orcarouter",
            ProviderId::Qwen => "qwen",
            ProviderId::DeepSeek => "deepseek",
            ProviderId::MiniMax => "minimax",
            ProviderId::Zai => "zai",
            ProviderId::Azure => "azure",
            ProviderId::Bedrock => "bedrock",
            ProviderId::OpenAiCompatible => "openai_compatible",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "OpenAI",
            ProviderId::Anthropic => "Anthropic",
            ProviderId::Gemini => "Google Gemini",
            ProviderId::OpenRouter => "OpenRouter",
            ProviderId::OrcaRouter => "OrcaRouter",
            ProviderId::Qwen => "Qwen (Alibaba)",
            ProviderId::DeepSeek => "DeepSeek",
            ProviderId::MiniMax => "Minimax",
            ProviderId::Zai => "Z.ai",
            ProviderId::Azure => "Azure OpenAI",
            ProviderId::Bedrock => "AWS Bedrock",
            ProviderId::OpenAiCompatible => "OpenAI Compatible",
        }
    }

    pub fn family(self) -> Family {
        match self {
            ProviderId::Anthropic => Family::Anthropic,
            ProviderId::Gemini => Family::Gemini,
            ProviderId::OpenRouter => Family::OpenRouter,
            ProviderId::Azure => Family::Azure,
            ProviderId::Bedrock => Family::Bedrock,
            _ => Family::OpenAiStyle,
        }
    }

    /// The default API host of seed 003; `None` where the user must give one.
    pub fn default_host(self) -> Option<&'static str> {
        match self {
            ProviderId::OpenAi => Some("https://api.openai.com/v1"),
            ProviderId::Anthropic => Some("https://api.anthropic.com"),
            ProviderId::Gemini => Some("https://generativelanguage.googleapis.com/v1beta/openai"),
            ProviderId::OpenRouter => Some("https://openrouter.ai/api/v1"),
            ProviderId::OrcaRouter => Some("https://api.orcarouter.ai/v1"),
            ProviderId::Qwen => Some("https://dashscope.aliyuncs.com/compatible-mode/v1"),
            ProviderId::DeepSeek => Some("https://api.deepseek.com"),
            ProviderId::MiniMax => Some("https://api.minimax.io/v1"),
            ProviderId::Zai => Some("https://api.z.ai/api/coding/paas/v4"),
            ProviderId::Azure | ProviderId::Bedrock | ProviderId::OpenAiCompatible => None,
        }
    }

    /// What a key of this provider looks like, for people pasting one.
    pub fn key_format(self) -> &'static str {
        match self {
            ProviderId::OpenAi => "sk-... (sk-proj-..., sk-svcacct-...)",
            ProviderId::Anthropic => "sk-ant-api03-...",
            ProviderId::Gemini => "AIza... or AQ....",
            ProviderId::OpenRouter => "sk-or-v1-...",
            ProviderId::OrcaRouter => "provider-issued key",
            ProviderId::Qwen => "sk-...",
            ProviderId::DeepSeek => "sk-...",
            ProviderId::MiniMax => "provider-issued key",
            ProviderId::Zai => "provider-issued key",
            ProviderId::Azure => "32-character resource key",
            ProviderId::Bedrock => "AWS secret access key (40 characters)",
            ProviderId::OpenAiCompatible => "any",
        }
    }

    pub fn config_fields(self) -> &'static [ConfigField] {
        const AZURE: &[ConfigField] = &[
            ConfigField { name: "deployment", required: true, default: None, description: "Azure deployment name" },
            ConfigField { name: "api_version", required: false, default: Some(AZURE_API_VERSION), description: "Azure OpenAI API version" },
        ];
        const BEDROCK: &[ConfigField] = &[
            ConfigField { name: "region", required: true, default: None, description: "AWS region, e.g. us-east-1" },
            ConfigField {
                name: "access_key_id",
                required: true,
                default: None,
                description: "AWS access key id; api_key is the secret access key",
            },
        ];
        match self {
            ProviderId::Azure => AZURE,
            ProviderId::Bedrock => BEDROCK,
            _ => &[],
        }
    }

    /// The fields a configure request for this provider takes, for the catalog.
    pub fn catalog_entry(self) -> Value {
        let mut fields = vec![json!({"name": "api_key", "required": true, "secret": true})];
        fields.push(json!({"name": "api_host", "required": self.default_host().is_none(), "default": self.default_host()}));
        fields.push(json!({"name": "model", "required": false}));
        fields.push(json!({"name": "fallback_model", "required": false}));
        for field in self.config_fields() {
            fields.push(json!({
                "name": format!("config.{}", field.name),
                "required": field.required,
                "default": field.default,
                "description": field.description,
            }));
        }
        json!({
            "id": self.as_str(),
            "name": self.display_name(),
            "default_host": self.default_host(),
            "key_format": self.key_format(),
            "fields": fields,
        })
    }
}

/// Prefixes only one provider issues. A key carrying another provider's is refused before
/// any outbound call; a bare `sk-` proves nothing, so it is not here.
const DISTINCTIVE_PREFIXES: [(&str, ProviderId); 7] = [
    ("sk-ant-", ProviderId::Anthropic),
    ("sk-or-", ProviderId::OpenRouter),
    ("sk-proj-", ProviderId::OpenAi),
    ("sk-svcacct-", ProviderId::OpenAi),
    ("sk-admin-", ProviderId::OpenAi),
    ("AIza", ProviderId::Gemini),
    ("AQ.", ProviderId::Gemini),
];

/// The provider a key visibly belongs to, when that is not `provider`. `openai_compatible`
/// endpoints may front any vendor, so nothing is refused for them.
pub fn detect_other_provider(provider: ProviderId, key: &str) -> Option<ProviderId> {
    if provider == ProviderId::OpenAiCompatible {
        return None;
    }
    DISTINCTIVE_PREFIXES.iter().find(|(prefix, _)| key.starts_with(prefix)).map(|(_, owner)| *owner).filter(|owner| *owner != provider)
}

/// 1 to 512 printable ASCII characters without whitespace.
pub fn key_shape_ok(key: &str) -> bool {
    (1..=512).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_id_parses_back_and_claude_is_anthropic() {
        for provider in ProviderId::ALL {
            assert_eq!(ProviderId::parse(provider.as_str()), Some(provider));
        }
        assert_eq!(ProviderId::parse("claude"), Some(ProviderId::Anthropic));
        assert_eq!(ProviderId::parse("OpenAI"), None);
        assert_eq!(ProviderId::parse("cohere"), None);
    }

    #[test]
    fn only_azure_bedrock_and_openai_compatible_lack_a_default_host() {
        let without: Vec<_> = ProviderId::ALL.into_iter().filter(|p| p.default_host().is_none()).collect();
        assert_eq!(without, vec![ProviderId::Azure, ProviderId::Bedrock, ProviderId::OpenAiCompatible]);
    }

    #[test]
    fn another_providers_distinctive_prefix_is_detected() {
        assert_eq!(detect_other_provider(ProviderId::OpenAi, "sk-ant-api03-xyz"), Some(ProviderId::Anthropic));
        assert_eq!(detect_other_provider(ProviderId::Anthropic, "sk-or-v1-abc"), Some(ProviderId::OpenRouter));
        assert_eq!(detect_other_provider(ProviderId::DeepSeek, "sk-proj-abc"), Some(ProviderId::OpenAi));
        assert_eq!(detect_other_provider(ProviderId::OpenAi, "AIzaSyABC"), Some(ProviderId::Gemini));
        assert_eq!(detect_other_provider(ProviderId::Azure, "sk-ant-x"), Some(ProviderId::Anthropic));
    }

    #[test]
    fn valid_shapes_are_not_refused() {
        assert_eq!(detect_other_provider(ProviderId::OpenAi, "sk-proj-abc"), None);
        assert_eq!(detect_other_provider(ProviderId::OpenAi, "sk-svcacct-abc"), None);
        assert_eq!(detect_other_provider(ProviderId::OpenAi, "sk-abc123"), None);
        assert_eq!(detect_other_provider(ProviderId::Gemini, "AQ.Ab8RN6abc"), None);
        assert_eq!(detect_other_provider(ProviderId::DeepSeek, "sk-0123456789abcdef"), None);
        assert_eq!(detect_other_provider(ProviderId::OpenAiCompatible, "sk-or-v1-abc"), None);
    }

    #[test]
    fn key_shape_is_printable_without_whitespace_up_to_512() {
        assert!(key_shape_ok("sk-proj-abc_DEF.123"));
        assert!(key_shape_ok(&"x".repeat(512)));
        for bad in ["", "has space", "tab\there", "new\nline", "é", &"x".repeat(513)] {
            assert!(!key_shape_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_catalog_lists_the_fields_each_provider_needs() {
        let azure = ProviderId::Azure.catalog_entry();
        let names: Vec<&str> = azure["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"config.deployment") && names.contains(&"config.api_version"));
        let bedrock = ProviderId::Bedrock.catalog_entry();
        assert_eq!(bedrock["default_host"], Value::Null);
        assert!(bedrock["fields"].to_string().contains("config.access_key_id"));
    }
}
