//! What is left to spend on a key, where the provider says: OpenRouter's `/key` (a credit limit)
//! and DeepSeek's `/user/balance` (an account balance). A key with nothing left is
//! `quota_exceeded` at save time, not at the first request it cannot serve.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::time::rfc3339;

#[derive(Debug, Clone, PartialEq)]
pub struct Funds {
    pub remaining: f64,
    /// `None` where the provider counts credits rather than money.
    pub currency: Option<String>,
    pub checked_at: i64,
}

impl Funds {
    pub fn to_json(&self) -> Value {
        json!({"remaining": self.remaining, "currency": self.currency, "checked_at": rfc3339(self.checked_at)})
    }

    pub fn exhausted(&self) -> bool {
        self.remaining <= 0.0
    }
}

/// OpenRouter's `/key`: `data.limit_remaining` when the key has a credit limit; `None` for a key
/// without one (its spending is bounded by the account only) or an answer of another shape.
pub fn openrouter(body: &str, now_ms: i64) -> Option<Funds> {
    #[derive(Deserialize)]
    struct KeyInfo {
        data: Option<KeyLimits>,
    }
    #[derive(Deserialize)]
    struct KeyLimits {
        limit: Option<f64>,
        limit_remaining: Option<f64>,
    }
    let data = serde_json::from_str::<KeyInfo>(body).ok()?.data?;
    data.limit?;
    let remaining = data.limit_remaining?;
    Some(Funds { remaining: remaining.max(0.0), currency: None, checked_at: now_ms })
}

/// DeepSeek's `/user/balance`: whether the account can serve requests, and its first balance.
/// `None` when the answer is not of that shape.
pub fn deepseek(body: &str, now_ms: i64) -> Option<(bool, Funds)> {
    #[derive(Deserialize)]
    struct Balance {
        is_available: bool,
        #[serde(default)]
        balance_infos: Vec<BalanceInfo>,
    }
    #[derive(Deserialize)]
    struct BalanceInfo {
        currency: String,
        total_balance: Amount,
    }
    /// DeepSeek writes amounts as strings ("110.00"); a number is read too.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Amount {
        Text(String),
        Number(f64),
    }
    let balance = serde_json::from_str::<Balance>(body).ok()?;
    let (remaining, currency) = match balance.balance_infos.into_iter().next() {
        Some(info) => {
            let amount = match info.total_balance {
                Amount::Number(n) => n,
                Amount::Text(t) => t.trim().parse::<f64>().ok()?,
            };
            (amount, Some(info.currency).filter(|c| !c.is_empty() && c.len() <= 8))
        }
        None => (0.0, None),
    };
    let remaining = if remaining.is_finite() { remaining.max(0.0) } else { 0.0 };
    Some((balance.is_available, Funds { remaining, currency, checked_at: now_ms }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_openrouter_key_with_a_limit_reports_what_is_left_in_credits() {
        let body = r#"{"data":{"label":"sk-or-v1-abc...xyz","limit":10,"usage":2.5,"limit_remaining":7.5,"is_free_tier":false}}"#;
        assert_eq!(openrouter(body, 5), Some(Funds { remaining: 7.5, currency: None, checked_at: 5 }));
    }

    #[test]
    fn an_openrouter_key_without_a_limit_has_no_known_funds() {
        let body = r#"{"data":{"label":"x","limit":null,"usage":0.42,"limit_remaining":null}}"#;
        assert_eq!(openrouter(body, 5), None);
        assert_eq!(openrouter(r#"{"data":{"limit_remaining":3.5}}"#, 5), None, "no limit set");
        assert_eq!(openrouter("not json", 5), None);
        assert_eq!(openrouter(r#"{"error":{"code":401}}"#, 5), None);
    }

    #[test]
    fn a_spent_or_overspent_openrouter_limit_is_zero_and_exhausted() {
        for body in [r#"{"data":{"limit":10,"limit_remaining":0}}"#, r#"{"data":{"limit":10,"limit_remaining":-0.3}}"#] {
            let funds = openrouter(body, 0).unwrap();
            assert_eq!(funds.remaining, 0.0, "{body}");
            assert!(funds.exhausted());
        }
    }

    #[test]
    fn a_deepseek_balance_is_read_from_its_string_amounts() {
        let body = r#"{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"110.00","granted_balance":"10.00","topped_up_balance":"100.00"}]}"#;
        let (available, funds) = deepseek(body, 9).unwrap();
        assert!(available);
        assert_eq!(funds, Funds { remaining: 110.0, currency: Some("CNY".into()), checked_at: 9 });
    }

    #[test]
    fn a_deepseek_account_that_is_not_available_is_exhausted() {
        let body = r#"{"is_available":false,"balance_infos":[{"currency":"USD","total_balance":"0.00","granted_balance":"0.00","topped_up_balance":"0.00"}]}"#;
        let (available, funds) = deepseek(body, 9).unwrap();
        assert!(!available);
        assert!(funds.exhausted());
        assert_eq!(deepseek(r#"{"is_available":false,"balance_infos":[]}"#, 9).unwrap().1.currency, None);
    }

    #[test]
    fn a_deepseek_answer_of_another_shape_says_nothing() {
        for body in
            ["", "[]", r#"{"balance_infos":[]}"#, r#"{"is_available":true,"balance_infos":[{"currency":"USD","total_balance":"lots"}]}"#]
        {
            assert_eq!(deepseek(body, 0), None, "{body}");
        }
    }

    #[test]
    fn funds_show_the_time_they_were_checked() {
        let funds = Funds { remaining: 1.5, currency: Some("USD".into()), checked_at: 0 };
        assert_eq!(funds.to_json(), json!({"remaining": 1.5, "currency": "USD", "checked_at": "1970-01-01T00:00:00Z"}));
    }
}
