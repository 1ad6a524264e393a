//! How the config and mapping files are read: TOML with unknown keys collected as errors (so
//! `check` reports them all at once) instead of failing on the first, and `${VAR}` expanded from
//! the environment where the file allows it. A leaf module, used by `config` and `mapping`.

mod keys;

use std::path::Path;

/// Parses a TOML document into `T`, collecting unknown keys instead of failing on the first one,
/// and expanding `${VAR}` in every string value.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &Path,
    expand_env: bool,
    errors: &mut Vec<String>,
) -> Option<T> {
    let mut value: toml::Table = match toml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            errors.push(format!("{}{at}: {msg}", file.display()));
            return None;
        }
    };
    if expand_env {
        for (k, v) in value.iter_mut() {
            expand_value(v, k, file, errors);
        }
    }
    let mut unknown = Vec::new();
    let parsed: Result<T, _> = serde_ignored::deserialize(toml::Value::Table(value), |p| {
        unknown.push(p.to_string().replace(".?", ""))
    });
    let known = if unknown.is_empty() {
        keys::KnownKeys::new()
    } else {
        keys::known_keys::<T>()
    };
    for key in unknown {
        let hint = keys::suggestion(&known, &key)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
        errors.push(format!("{}: unknown key `{key}`{hint}", file.display()));
    }
    match parsed {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(format!("{}: {}", file.display(), e.message()));
            None
        }
    }
}

fn expand_value(v: &mut toml::Value, key: &str, file: &Path, errors: &mut Vec<String>) {
    match v {
        toml::Value::String(s) if s.contains("${") => match expand_env(s) {
            Ok(x) => *s = x,
            Err(vars) => {
                for var in vars {
                    errors.push(format!(
                        "{}: `{key}` uses the environment variable {var}, which is not set",
                        file.display()
                    ));
                }
            }
        },
        toml::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                expand_value(x, &format!("{key}[{i}]"), file, errors);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                expand_value(x, &format!("{key}.{k}"), file, errors);
            }
        }
        _ => {}
    }
}

/// Replaces every `${VAR}` with the variable's value; returns the names of unset variables.
pub fn expand_env(s: &str) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match std::env::var(name) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => missing.push(name.to_string()),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_names_missing_vars() {
        // SAFETY: single-threaded use of a variable name no other test touches.
        unsafe { std::env::set_var("YS_TEST_PRESENT", "abc") };
        assert_eq!(expand_env("x${YS_TEST_PRESENT}y").unwrap(), "xabcy");
        assert_eq!(
            expand_env("${YS_TEST_ABSENT_1}${YS_TEST_ABSENT_2}").unwrap_err(),
            vec!["YS_TEST_ABSENT_1", "YS_TEST_ABSENT_2"]
        );
    }
}
