//! `[stripe]`: card payments through Stripe's HTTP API.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[stripe]`: card payments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeSettings {
    /// `sk_live_...` / `sk_test_...`; empty disables card payments. Prefer
    /// `SYNC_STRIPE__SECRET_KEY`.
    pub secret_key: String,
    /// `whsec_...` of the webhook endpoint. Prefer `SYNC_STRIPE__WEBHOOK_SECRET`.
    pub webhook_secret: String,
    /// Where the API is; a stand-in's address in tests and demos.
    pub api_base: String,
    /// Oldest (or furthest ahead) webhook signature time accepted.
    pub webhook_tolerance_secs: u32,
    /// Longest wait for an API answer.
    pub timeout_secs: u32,
    /// `pk_live_...` / `pk_test_...`: what the buyer pages give Stripe.js;
    /// they offer card payment only with it set.
    pub publishable_key: String,
    /// Where the buyer pages load Stripe.js from (a stand-in's in tests).
    pub js_url: String,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            secret_key: String::new(),
            webhook_secret: String::new(),
            api_base: "https://api.stripe.com".into(),
            webhook_tolerance_secs: 300,
            timeout_secs: 30,
            publishable_key: String::new(),
            js_url: "https://js.stripe.com/v3/".into(),
        }
    }
}

impl StripeSettings {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.api_base.starts_with("https://") || self.api_base.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                key: "stripe.api_base",
                message: "use an https:// URL".into(),
            });
        }
        if !(self.js_url.starts_with("https://") || self.js_url.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                key: "stripe.js_url",
                message: "use an https:// URL".into(),
            });
        }
        if self.webhook_tolerance_secs == 0 || self.timeout_secs == 0 {
            return Err(ConfigError::Invalid {
                key: "stripe.webhook_tolerance_secs",
                message: "webhook_tolerance_secs and timeout_secs must be at least 1".into(),
            });
        }
        Ok(())
    }
}
