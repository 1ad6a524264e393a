//! `SecretString`: a credential that never prints itself.
//!
//! `user_token` and `user_secret_key` are held in this type from the moment they are read, so a
//! `{:?}` on a settings struct, an error message or a log field can only ever show `[redacted]`.
//! An API can still echo a credential back (an error body that repeats the request's headers):
//! `Scrubber` removes the configured values from any text before it is logged or stored.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to the real value: used when building request headers.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Every configured secret: the stores' credentials and the status page's token.
pub fn scrubber(settings: &super::Settings) -> Scrubber {
    Scrubber::new(
        settings
            .stores
            .iter()
            .flat_map(|s| [&s.user_token, &s.user_secret_key])
            .chain(settings.metrics.iter().filter_map(|m| m.token.as_ref())),
    )
}

/// The text that replaces a secret value.
pub const REDACTED: &str = "[redacted]";

/// Removes known secret values from text. Holds the values, so it never prints itself either.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Every form a value may appear in (as is, JSON-escaped), longest first.
    needles: Vec<String>,
}

impl fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scrubber({} values)", self.needles.len())
    }
}

impl Scrubber {
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a SecretString>) -> Self {
        let mut needles = Vec::new();
        for s in secrets {
            let v = s.expose();
            if v.is_empty() {
                continue;
            }
            needles.push(v.to_string());
            // Inside a JSON string a quote or backslash in the value appears escaped.
            if let Ok(json) = serde_json::to_string(v) {
                let inner = &json[1..json.len() - 1];
                if inner != v {
                    needles.push(inner.to_string());
                }
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    /// `text` with every secret value replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        self.scrub_in_place(&mut out);
        out
    }

    pub fn scrub_in_place(&self, text: &mut String) {
        for n in &self.needles {
            if text.contains(n.as_str()) {
                *text = text.replace(n.as_str(), REDACTED);
            }
        }
    }

    /// Whether `text` holds a secret value.
    pub fn finds_in(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = SecretString::new("tok-123");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(s.expose(), "tok-123");
    }

    #[test]
    fn scrubbing_removes_every_value_and_prints_nothing() {
        let a = SecretString::new("tok-123");
        let b = SecretString::new("k\"ey");
        let sc = Scrubber::new([&a, &b, &SecretString::new("")]);
        assert_eq!(
            sc.scrub("headers: tok-123, k\"ey, {\"x\":\"k\\\"ey\"}"),
            "headers: [redacted], [redacted], {\"x\":\"[redacted]\"}"
        );
        assert!(sc.finds_in("..tok-123.."));
        assert!(!format!("{sc:?}").contains("tok"));
    }
}
