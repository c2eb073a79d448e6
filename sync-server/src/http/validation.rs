//! Request bodies of the ticketing API: [`ValidJson`] reads a JSON body,
//! refuses fields the type does not know (whether or not the type says
//! `deny_unknown_fields`, so a forgotten attribute cannot let a misspelt
//! field pass silently), then runs the type's own [`Validate`] rules.
//!
//! Every refusal names the field at fault, as a path like `tiers[1].name`:
//! - not JSON at all, cut short, trailing garbage: 400 `malformed_json`;
//! - not sent as `application/json`: 415;
//! - a field missing, unknown, of the wrong type or out of range: 422
//!   `invalid_field` with `field`.
//!
//! The helpers (`check_*`, [`parse_wallet`]) are what bodies use in their
//! `validate`, so limits read the same everywhere.

use std::fmt::{Display, Write as _};
use std::ops::RangeInclusive;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use shared::PublicKeyBytes;

use crate::http::error::ApiError;

/// A JSON body that parsed without unknown fields and passed its rules.
#[derive(Debug, Clone)]
pub struct ValidJson<T>(pub T);

/// Rules a body checks after it parsed. Report the first broken rule with
/// [`field_error`] or a `check_*` helper.
pub trait Validate {
    fn validate(&self) -> Result<(), ApiError>;
}

impl<T, S> FromRequest<S> for ValidJson<T>
where
    T: DeserializeOwned + Validate,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("request body too large".into())
            } else {
                ApiError::MalformedJson(e.body_text())
            }
        })?;
        let value: T = parse_json(&bytes)?;
        value.validate()?;
        Ok(ValidJson(value))
    }
}

/// Whether the request says its body is JSON.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// Parses `bytes` as a `T`, refusing unknown fields, with errors that name
/// the field. Used by [`ValidJson`]; public for bodies read another way.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let (value, unknown) = parse_json_noting_unknown(bytes)?;
    if let Some(field) = unknown {
        return Err(field_error(field, "unknown field"));
    }
    Ok(value)
}

/// [`parse_json`] that answers the path of the first unknown field instead of
/// refusing it, for messages whose protocol lets a newer sender add fields
/// (the gate protocol); the caller decides.
pub fn parse_json_noting_unknown<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(T, Option<String>), ApiError> {
    let mut unknown: Option<String> = None;
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let parsed = {
        let mut note = |path: serde_ignored::Path<'_>| {
            if unknown.is_none() {
                unknown = Some(ignored_path(&path));
            }
        };
        let watched = serde_ignored::Deserializer::new(&mut json, &mut note);
        serde_path_to_error::deserialize::<_, T>(watched)
    };
    let value = match parsed {
        Ok(value) => value,
        Err(e) => {
            let path = e.path().to_string();
            return Err(refusal(&path, e.into_inner()));
        }
    };
    json.end()
        .map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    Ok((value, unknown))
}

/// Turns serde's error at `path` into the answer the client sees.
fn refusal(path: &str, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = e.to_string();
    if !matches!(e.classify(), Category::Data) {
        return ApiError::MalformedJson(text);
    }
    // serde appends the position; the field path says more.
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(reason, _)| reason);
    // For a missing field serde reports the enclosing object's path and puts
    // the field's own name in the message; for an unknown one the path
    // already ends with it.
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| reason.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    let parent = if path == "." { "" } else { path };
    let field = match named {
        Some(name) if parent == name || parent.ends_with(&format!(".{name}")) => parent.to_owned(),
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) => format!("{parent}.{name}"),
        None if parent.is_empty() => "(body)".to_owned(),
        None => parent.to_owned(),
    };
    let reason = if reason.starts_with("unknown field") {
        "unknown field"
    } else if reason.starts_with("missing field") {
        "missing field"
    } else {
        reason
    };
    field_error(field, reason)
}

/// `a.b[2].c`, the same notation `serde_path_to_error` uses.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    fn walk(path: &Path<'_>, out: &mut String) {
        match path {
            Path::Root => {}
            Path::Seq { parent, index } => {
                walk(parent, out);
                let _ = write!(out, "[{index}]");
            }
            Path::Map { parent, key } => {
                walk(parent, out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Some { parent }
            | Path::NewtypeStruct { parent }
            | Path::NewtypeVariant { parent } => walk(parent, out),
        }
    }
    let mut out = String::new();
    walk(path, &mut out);
    out
}

/// A refusal of one field, answered as 422 with `field`.
pub fn field_error(field: impl Into<String>, reason: impl Display) -> ApiError {
    let field = field.into();
    ApiError::Validation {
        message: format!("{field}: {reason}"),
        field,
    }
}

/// Free text a person typed (names, venues, descriptions): `chars` long,
/// counted in characters, with no control characters (which have no place in
/// a ticket and are a favourite of log and header injection). Line breaks
/// are allowed only where `multiline`.
pub fn check_text(
    field: &str,
    value: &str,
    chars: RangeInclusive<usize>,
    multiline: bool,
) -> Result<(), ApiError> {
    let count = value.chars().count();
    if !chars.contains(&count) {
        return Err(field_error(
            field,
            format_args!("{} to {} characters", chars.start(), chars.end()),
        ));
    }
    if value.trim().is_empty() && *chars.start() > 0 {
        return Err(field_error(field, "must not be blank"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(field_error(field, "control characters are not allowed"));
    }
    Ok(())
}

/// Text that also goes on chain (an event's name and venue, a tier's name),
/// where the program counts bytes of UTF-8 rather than characters: what
/// [`check_text`] checks (one line), and at most `max_bytes` once trimmed
/// (the server stores it trimmed), so the chain never refuses it later.
pub fn check_chain_text(
    field: &str,
    value: &str,
    chars: RangeInclusive<usize>,
    max_bytes: usize,
) -> Result<(), ApiError> {
    check_text(field, value, chars, false)?;
    if value.trim().len() > max_bytes {
        return Err(field_error(
            field,
            format_args!(
                "at most {max_bytes} bytes on chain (a letter outside ASCII takes 2 to 4)"
            ),
        ));
    }
    Ok(())
}

/// Tier names, which go on chain: 1 to 16 characters and bytes
/// ([`check_chain_text`]), each refusal naming `tiers[i].name`.
pub fn check_tier_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<(), ApiError> {
    for (i, name) in names.into_iter().enumerate() {
        check_chain_text(
            &format!("tiers[{i}].name"),
            name,
            1..=16,
            ticketing::constants::MAX_TIER_NAME_LEN,
        )?;
    }
    Ok(())
}

/// A number inside `range` (amounts, capacities, counts).
pub fn check_range<T: PartialOrd + Display>(
    field: &str,
    value: T,
    range: RangeInclusive<T>,
) -> Result<(), ApiError> {
    if !range.contains(&value) {
        return Err(field_error(
            field,
            format_args!("must be from {} to {}", range.start(), range.end()),
        ));
    }
    Ok(())
}

/// An id the server gives out (event ids): the database holds signed
/// 64-bit integers, so anything above `i64::MAX` names nothing.
pub fn check_id(field: &str, value: u64) -> Result<(), ApiError> {
    if i64::try_from(value).is_err() {
        return Err(field_error(
            field,
            format_args!("must be at most {}", i64::MAX),
        ));
    }
    Ok(())
}

/// A list of `len` items inside `range` (batch sizes).
pub fn check_count(field: &str, len: usize, range: RangeInclusive<usize>) -> Result<(), ApiError> {
    if !range.contains(&len) {
        return Err(field_error(
            field,
            format_args!("{} to {} items", range.start(), range.end()),
        ));
    }
    Ok(())
}

/// An email address of plausible shape: one `@`, a dotted domain, no spaces,
/// at most 254 characters (the SMTP limit). Whether it exists only a mail
/// can tell.
pub fn check_email(field: &str, value: &str) -> Result<(), ApiError> {
    let shaped = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && local.len() <= 64
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !value.chars().any(|c| c.is_whitespace() || c.is_control());
    if !shaped {
        return Err(field_error(field, "not an email address"));
    }
    Ok(())
}

/// A Solana wallet: base58, 32 bytes, and a point on the curve (an address
/// off the curve can never sign, so it can never log in or hold a ticket
/// it could show).
pub fn parse_wallet(field: &str, value: &str) -> Result<PublicKeyBytes, ApiError> {
    let key: PublicKeyBytes = value
        .parse()
        .map_err(|_| field_error(field, "not a base58 public key of 32 bytes"))?;
    if key.verifying_key().is_none() {
        return Err(field_error(field, "not an ed25519 public key"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Tier {
        name: String,
        #[allow(dead_code)]
        price: u32,
    }

    // No `deny_unknown_fields`: the extractor refuses unknown fields anyway.
    #[derive(Debug, Deserialize)]
    struct NewEvent {
        name: String,
        capacity: u32,
        #[serde(default)]
        tiers: Vec<Tier>,
        #[serde(default)]
        organizer_email: Option<String>,
    }

    impl Validate for NewEvent {
        fn validate(&self) -> Result<(), ApiError> {
            check_text("name", &self.name, 1..=100, false)?;
            check_range("capacity", self.capacity, 1..=100_000)?;
            check_count("tiers", self.tiers.len(), 0..=8)?;
            for (i, tier) in self.tiers.iter().enumerate() {
                check_text(&format!("tiers[{i}].name"), &tier.name, 1..=32, false)?;
            }
            if let Some(email) = &self.organizer_email {
                check_email("organizer_email", email)?;
            }
            Ok(())
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        #[allow(dead_code)]
        wallet: String,
    }

    impl Validate for Strict {
        fn validate(&self) -> Result<(), ApiError> {
            Ok(())
        }
    }

    /// (status, error code, field) of the answer to `body`.
    async fn answer<T: DeserializeOwned + Validate>(
        content_type: &str,
        body: &str,
    ) -> (u16, String, Option<String>) {
        let request = Request::builder()
            .method("POST")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body.to_owned()))
            .unwrap();
        match ValidJson::<T>::from_request(request, &()).await {
            Ok(_) => (200, String::new(), None),
            Err(e) => {
                let response = axum::response::IntoResponse::into_response(e);
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap();
                let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                assert!(body["message"].is_string(), "{body}");
                (
                    status,
                    body["error"].as_str().unwrap().to_owned(),
                    body["field"].as_str().map(str::to_owned),
                )
            }
        }
    }

    #[tokio::test]
    async fn bodies_are_refused_with_the_status_and_field_at_fault() {
        let json = "application/json";
        let cases: &[(&str, &str, u16, &str, Option<&str>)] = &[
            (json, r#"{"name":"Gala","capacity":100}"#, 200, "", None),
            (
                "application/json; charset=utf-8",
                r#"{"name":"Gala","capacity":100,"tiers":[{"name":"vip","price":5}]}"#,
                200,
                "",
                None,
            ),
            (
                "text/plain",
                r#"{"name":"Gala","capacity":100}"#,
                415,
                "unsupported_media_type",
                None,
            ),
            (json, r#"{"name":"Gala","#, 400, "malformed_json", None),
            (json, r#"not json"#, 400, "malformed_json", None),
            (
                json,
                r#"{"name":"Gala","capacity":100} trailing"#,
                400,
                "malformed_json",
                None,
            ),
            (
                json,
                r#"{"capacity":100}"#,
                422,
                "invalid_field",
                Some("name"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":"many"}"#,
                422,
                "invalid_field",
                Some("capacity"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":-1}"#,
                422,
                "invalid_field",
                Some("capacity"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":100,"capacty":5}"#,
                422,
                "invalid_field",
                Some("capacty"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":100,"tiers":[{"name":"a","price":1},{"name":"b","price":2,"prize":3}]}"#,
                422,
                "invalid_field",
                Some("tiers[1].prize"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":100,"tiers":[{"name":"a"}]}"#,
                422,
                "invalid_field",
                Some("tiers[0].price"),
            ),
            // Parsed fine, broken rules.
            (
                json,
                r#"{"name":"","capacity":100}"#,
                422,
                "invalid_field",
                Some("name"),
            ),
            (
                json,
                r#"{"name":"Ga\u0007la","capacity":100}"#,
                422,
                "invalid_field",
                Some("name"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":0}"#,
                422,
                "invalid_field",
                Some("capacity"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":100,"tiers":[{"name":"","price":1}]}"#,
                422,
                "invalid_field",
                Some("tiers[0].name"),
            ),
            (
                json,
                r#"{"name":"Gala","capacity":100,"organizer_email":"no-at-sign"}"#,
                422,
                "invalid_field",
                Some("organizer_email"),
            ),
        ];
        for (content_type, body, status, code, field) in cases {
            let got = answer::<NewEvent>(content_type, body).await;
            assert_eq!(
                got,
                (*status, code.to_string(), field.map(str::to_owned)),
                "{body}"
            );
        }
    }

    #[tokio::test]
    async fn types_that_deny_unknown_fields_report_them_the_same_way() {
        let got = answer::<Strict>("application/json", r#"{"wallet":"x","walet":"y"}"#).await;
        assert_eq!(got, (422, "invalid_field".into(), Some("walet".into())));
    }

    #[test]
    fn helpers_accept_the_edges_of_their_ranges() {
        assert!(check_text("name", "a", 1..=3, false).is_ok());
        assert!(
            check_text("name", "äöü", 1..=3, false).is_ok(),
            "characters, not bytes"
        );
        assert!(check_text("name", "abcd", 1..=3, false).is_err());
        assert!(check_text("name", "   ", 1..=3, false).is_err());
        assert!(check_text("description", "two\nlines", 0..=100, true).is_ok());
        assert!(check_text("name", "two\nlines", 0..=100, false).is_err());
        assert!(check_range("price", 0u64, 0..=10).is_ok());
        assert!(check_range("price", 11u64, 0..=10).is_err());
        assert!(check_count("tickets", 0, 1..=50).is_err());
        assert!(check_id("event_id", i64::MAX as u64).is_ok());
        assert!(check_id("event_id", i64::MAX as u64 + 1).is_err());
        assert!(check_email("email", "ana@example.org").is_ok());
        for bad in [
            "ana",
            "ana@",
            "@example.org",
            "ana@example",
            "a na@example.org",
            "a@b@c.d",
        ] {
            assert!(check_email("email", bad).is_err(), "{bad}");
        }
        let wallet =
            PublicKeyBytes::from(&ed25519_dalek::SigningKey::from_bytes(&[5; 32]).verifying_key());
        assert_eq!(parse_wallet("wallet", &wallet.to_base58()).unwrap(), wallet);
        assert!(parse_wallet("wallet", "0OIl").is_err(), "not base58");
        // 32 bytes, but not a curve point: nobody can sign for it.
        let off_curve = (0u8..=255)
            .map(|b| PublicKeyBytes([b; 32]))
            .find(|k| k.verifying_key().is_none())
            .unwrap();
        assert!(parse_wallet("wallet", &off_curve.to_base58()).is_err());
    }
}
