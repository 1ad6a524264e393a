//! `[metrics]`: where the daemon serves Prometheus metrics, `/healthz` and the status page, and
//! the token that guards the page.

use std::net::SocketAddr;

use super::raw::RawMetrics;
use super::secret::SecretString;

/// Shorter tokens are refused: the page shows what the store holds and offers its reports.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    pub listen: SocketAddr,
    /// Guards the status page and the report downloads; `None`: the page is off (metrics and
    /// `/healthz` are served either way).
    pub token: Option<SecretString>,
}

pub fn validate(raw: &RawMetrics, file: &str, errors: &mut Vec<String>) -> Option<MetricsSettings> {
    let before = errors.len();
    let listen = match raw.listen.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(format!(
                "{file}: [metrics] `listen` is required (for example \"127.0.0.1:9187\")"
            ));
            None
        }
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                errors.push(format!(
                    "{file}: [metrics] `listen` \"{text}\" is not an address and port (for example \"127.0.0.1:9187\")"
                ));
                None
            }
        },
    };
    let token = match raw.token.as_deref() {
        None => None,
        Some(t) if t.chars().count() < MIN_TOKEN_LEN => {
            // Never the value itself: only its length.
            errors.push(format!(
                "{file}: [metrics] `token` has {} characters; use at least {MIN_TOKEN_LEN} (for example the output of `openssl rand -hex 24`), or remove it to turn the status page off",
                t.chars().count()
            ));
            None
        }
        Some(t) if !t.chars().all(|c| c.is_ascii_graphic()) => {
            errors.push(format!(
                "{file}: [metrics] `token` may hold only printable ASCII without spaces (it travels in an HTTP header)"
            ));
            None
        }
        Some(t) => Some(SecretString::new(t)),
    };
    if errors.len() != before {
        return None;
    }
    Some(MetricsSettings {
        listen: listen?,
        token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(listen: Option<&str>, token: Option<&str>) -> Result<MetricsSettings, Vec<String>> {
        let raw = RawMetrics {
            listen: listen.map(str::to_string),
            token: token.map(str::to_string),
        };
        let mut errors = Vec::new();
        validate(&raw, "c.toml", &mut errors).ok_or(errors)
    }

    #[test]
    fn a_good_section_and_each_bad_key_named() {
        let ok = check(Some("127.0.0.1:9187"), Some("0123456789abcdef")).unwrap();
        assert_eq!(ok.listen.port(), 9187);
        assert!(check(Some("127.0.0.1:9187"), None).unwrap().token.is_none());
        let e = check(None, None).unwrap_err();
        assert!(e[0].contains("`listen` is required"), "{e:?}");
        let e = check(Some("localhost"), None).unwrap_err();
        assert!(e[0].contains("\"localhost\" is not an address"), "{e:?}");
        let e = check(Some("127.0.0.1:1"), Some("short-secret")).unwrap_err();
        assert!(
            e[0].contains("12 characters") && !e[0].contains("short-secret"),
            "{e:?}"
        );
        let e = check(Some("127.0.0.1:1"), Some("with a space in it!")).unwrap_err();
        assert!(e[0].contains("printable ASCII"), "{e:?}");
    }
}
