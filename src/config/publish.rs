//! `[publish]`: where the built-in file server listens and how Yampi reaches it. Validated here
//! without touching the network; whether `listen` can be bound is `check`'s business
//! (`publish::probe_listen`), since a running daemon holds that port itself.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::duration::{format_duration, parse_duration};
use super::raw::RawPublish;

/// `file_ttl` when unset: longer than a queue normally takes, short enough not to leave price
/// files reachable for days.
pub const DEFAULT_FILE_TTL: Duration = Duration::from_secs(6 * 3_600);

/// Below a minute Yampi may not even have fetched the file; above a week it is a typo.
pub const FILE_TTL: RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(7 * 86_400);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSettings {
    /// The address the file server binds.
    pub listen: SocketAddr,
    /// http(s), no query string, no fragment, no credentials, no trailing slash.
    pub public_base_url: String,
    /// A published file is removed (and answered 404) at the latest this long after publishing.
    pub file_ttl: Duration,
}

impl PublishSettings {
    /// The path part of `public_base_url` without its trailing slash (`/arquivos`, or empty).
    /// A reverse proxy may or may not strip it before forwarding, so the server accepts both.
    pub fn path_prefix(&self) -> String {
        reqwest::Url::parse(&self.public_base_url)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }
}

/// The validated section, or `None` with one error per bad key in `errors`.
pub fn validate(raw: &RawPublish, file: &str, errors: &mut Vec<String>) -> Option<PublishSettings> {
    let before = errors.len();
    let key = |k: &str| format!("{file}: `publish.{k}`");

    let listen = match raw.listen.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(format!(
                "{} is required (an IP address and port, for example \"0.0.0.0:8089\")",
                key("listen")
            ));
            None
        }
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(a) if a.port() == 0 => {
                errors.push(format!(
                    "{} \"{text}\" must name a port: `public_base_url` has to reach a fixed one",
                    key("listen")
                ));
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                errors.push(format!(
                    "{} \"{text}\" is not an IP address and port (for example \"0.0.0.0:8089\" or \"[::]:8089\")",
                    key("listen")
                ));
                None
            }
        },
    };

    let public_base_url = match raw.public_base_url.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(format!(
                "{} is required (the URL at which Yampi reaches `listen`, for example \"https://sync.minhaloja.com.br/arquivos\")",
                key("public_base_url")
            ));
            None
        }
        Some(text) => match base_url_problem(text) {
            Some(problem) => {
                // A URL with credentials is not echoed: the password would reach the output.
                let shown = if text.contains('@') {
                    String::new()
                } else {
                    format!(" \"{text}\"")
                };
                errors.push(format!("{}{shown} {problem}", key("public_base_url")));
                None
            }
            None => Some(text.trim_end_matches('/').to_string()),
        },
    };

    let file_ttl = match raw.file_ttl.as_deref() {
        None => DEFAULT_FILE_TTL,
        Some(text) => match parse_duration(text) {
            Ok(d) if FILE_TTL.contains(&d) => d,
            Ok(_) => {
                errors.push(format!(
                    "{} \"{text}\" must be between {} and {}",
                    key("file_ttl"),
                    format_duration(*FILE_TTL.start()),
                    format_duration(*FILE_TTL.end())
                ));
                DEFAULT_FILE_TTL
            }
            Err(e) => {
                errors.push(format!("{} {e}", key("file_ttl")));
                DEFAULT_FILE_TTL
            }
        },
    };

    if errors.len() != before {
        return None;
    }
    Some(PublishSettings {
        listen: listen?,
        public_base_url: public_base_url?,
        file_ttl,
    })
}

/// Why `text` cannot be the base of a file URL Yampi downloads, or `None` when it can.
fn base_url_problem(text: &str) -> Option<&'static str> {
    // Yampi may pick its spreadsheet reader from the URL's extension: the path must end in
    // `.xls`, so no query string or fragment may follow it.
    if text.contains('?') {
        return Some("must not have a query string");
    }
    if text.contains('#') {
        return Some("must not have a fragment (#...)");
    }
    if text.chars().any(char::is_whitespace) {
        return Some("must not contain spaces");
    }
    let Ok(url) = reqwest::Url::parse(text) else {
        return Some("is not a URL (for example \"https://sync.minhaloja.com.br/arquivos\")");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return Some("must start with http:// or https://");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("has no host name");
    }
    if !url.username().is_empty() || url.password().is_some() {
        // It ends up in every URL sent to Yampi and in logs.
        return Some("must not hold a user name or password");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(listen: &str, url: &str, ttl: Option<&str>) -> RawPublish {
        RawPublish {
            listen: Some(listen.into()),
            public_base_url: Some(url.into()),
            file_ttl: ttl.map(Into::into),
        }
    }

    fn errors_of(r: &RawPublish) -> Vec<String> {
        let mut errors = Vec::new();
        validate(r, "c.toml", &mut errors);
        errors
    }

    #[test]
    fn a_good_section_validates_with_the_default_ttl() {
        let mut errors = Vec::new();
        let s = validate(
            &raw("0.0.0.0:8089", "https://sync.loja.com.br/arquivos/", None),
            "c.toml",
            &mut errors,
        )
        .expect("valid");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.public_base_url, "https://sync.loja.com.br/arquivos");
        assert_eq!(s.path_prefix(), "/arquivos");
        assert_eq!(s.file_ttl, DEFAULT_FILE_TTL);
        assert_eq!(s.listen.port(), 8089);
        let root = validate(
            &raw("[::]:80", "http://10.0.0.5:8089", Some("2h")),
            "c.toml",
            &mut errors,
        )
        .expect("valid");
        assert_eq!(root.path_prefix(), "");
        assert_eq!(root.file_ttl, Duration::from_secs(7_200));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (r, key) in [
            (raw("0.0.0.0", "https://a.b/x", None), "publish.listen"),
            (raw("localhost:80", "https://a.b/x", None), "publish.listen"),
            (raw("0.0.0.0:0", "https://a.b/x", None), "publish.listen"),
            (
                raw("0.0.0.0:1", "ftp://a.b/x", None),
                "publish.public_base_url",
            ),
            (raw("0.0.0.0:1", "a.b/x", None), "publish.public_base_url"),
            (
                raw("0.0.0.0:1", "https://a.b/x?k=1", None),
                "publish.public_base_url",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x?", None),
                "publish.public_base_url",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x#f", None),
                "publish.public_base_url",
            ),
            (
                raw("0.0.0.0:1", "https://u:p@a.b/x", None),
                "publish.public_base_url",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x", Some("0s")),
                "publish.file_ttl",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x", Some("30s")),
                "publish.file_ttl",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x", Some("400d")),
                "publish.file_ttl",
            ),
            (
                raw("0.0.0.0:1", "https://a.b/x", Some("6")),
                "publish.file_ttl",
            ),
        ] {
            let errors = errors_of(&r);
            assert_eq!(errors.len(), 1, "{r:?}: {errors:?}");
            assert!(errors[0].contains(&format!("`{key}`")), "{errors:?}");
            assert!(!errors[0].contains(":p@"), "no password is echoed");
        }
        let missing = errors_of(&RawPublish::default());
        assert_eq!(missing.len(), 2, "{missing:?}");
    }
}
