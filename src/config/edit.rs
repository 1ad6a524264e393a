//! The `edit` of a `batch_edit` job, validated against the documented values of
//! `PUT /catalog/products/batch-edit` in Yampi's API documentation and turned into its request body.

use serde_json::{Map, Value, json};

const ATTRIBUTES: [&str; 4] = ["active", "price_sale", "price_discount", "all_prices"];
const OPERATIONS: [&str; 2] = ["increment", "decrement"];
const VALUE_TYPES: [&str; 2] = ["percent", "fixed"];
const LISTS: [&str; 4] = [
    "products_ids",
    "brands_ids",
    "collections_ids",
    "categories_ids",
];

/// A validated edit, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchEdit {
    pub body: Value,
}

impl BatchEdit {
    /// What the edit is, independent of the job's name: a hash of the store alias and the
    /// request body with its keys in a canonical order. Occurrence records are keyed by it.
    pub fn key(&self, alias: &str) -> String {
        let mut canonical = String::new();
        write_canonical(&self.body, &mut canonical);
        let hash = blake3::hash(format!("{alias}\n{canonical}").as_bytes());
        hash.to_hex()[..32].to_string()
    }

    /// One line for logs and reports: "price_discount decrement 20 percent".
    pub fn describe(&self) -> String {
        let b = &self.body;
        let s = |k: &str| {
            b.get(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
                .unwrap_or_default()
        };
        format!(
            "{} {} {} {} where {}",
            s("attribute"),
            s("operation_type"),
            s("value"),
            s("value_type"),
            b.get("restrictions")
                .map(Value::to_string)
                .unwrap_or_default()
        )
        .replace("  ", " ")
    }
}

/// Validates `edit = { ... }`; every problem is pushed with `label` in front.
pub fn validate(edit: &toml::Value, label: &str, errors: &mut Vec<String>) -> Option<BatchEdit> {
    let before = errors.len();
    let Some(t) = edit.as_table() else {
        errors.push(format!("{label}: `edit` must be a table"));
        return None;
    };
    for k in t.keys() {
        if ![
            "attribute",
            "operation_type",
            "value_type",
            "value",
            "restrictions",
        ]
        .contains(&k.as_str())
        {
            errors.push(format!("{label}: unknown key `edit.{k}`"));
        }
    }
    let text = |k: &str, allowed: &[&str], errors: &mut Vec<String>| -> Option<String> {
        match t.get(k) {
            Some(toml::Value::String(s)) if allowed.contains(&s.as_str()) => Some(s.clone()),
            Some(other) => {
                errors.push(format!(
                    "{label}: `edit.{k}` is {other}; it must be one of {}",
                    allowed.join(", ")
                ));
                None
            }
            None => None,
        }
    };
    let attribute = text("attribute", &ATTRIBUTES, errors);
    if t.get("attribute").is_none() {
        errors.push(format!(
            "{label}: `edit.attribute` is required ({})",
            ATTRIBUTES.join(", ")
        ));
    }
    let operation = text("operation_type", &OPERATIONS, errors);
    let value_type = text("value_type", &VALUE_TYPES, errors);
    let is_price = attribute.as_deref().is_some_and(|a| a != "active");
    if is_price {
        if t.get("operation_type").is_none() {
            errors.push(format!(
                "{label}: `edit.operation_type` (increment or decrement) is required for price attributes"
            ));
        }
        if t.get("value_type").is_none() {
            errors.push(format!(
                "{label}: `edit.value_type` (percent or fixed) is required for price attributes"
            ));
        }
    }
    let value = match (t.get("value"), attribute.as_deref()) {
        (None, _) => {
            errors.push(format!("{label}: `edit.value` is required"));
            Value::Null
        }
        (Some(toml::Value::Boolean(b)), Some("active")) => json!(b),
        (Some(_), Some("active")) => {
            errors.push(format!(
                "{label}: `edit.value` must be true or false for attribute active"
            ));
            Value::Null
        }
        (Some(toml::Value::Integer(i)), _) if *i > 0 => json!(i),
        (Some(toml::Value::Float(f)), _) if *f > 0.0 => json!(f),
        (Some(toml::Value::String(s)), _)
            if s.parse::<rust_decimal::Decimal>()
                .is_ok_and(|d| d > rust_decimal::Decimal::ZERO) =>
        {
            json!(s)
        }
        (Some(other), _) => {
            errors.push(format!(
                "{label}: `edit.value` must be a number above 0, not {other}"
            ));
            Value::Null
        }
    };
    if is_price
        && operation.as_deref() == Some("decrement")
        && value_type.as_deref() == Some("percent")
        && as_decimal(&value).is_some_and(|v| v >= rust_decimal::Decimal::ONE_HUNDRED)
    {
        errors.push(format!(
            "{label}: a percent decrement of 100 or more would make prices zero or negative"
        ));
    }
    let restrictions = match t.get("restrictions") {
        None => {
            errors.push(format!(
                "{label}: `edit.restrictions` is required (include and/or exclude of {})",
                LISTS.join(", ")
            ));
            Value::Null
        }
        Some(r) => restrictions(r, label, errors),
    };
    if errors.len() != before {
        return None;
    }
    let mut body = Map::new();
    body.insert("attribute".into(), json!(attribute));
    if let Some(o) = operation {
        body.insert("operation_type".into(), json!(o));
    }
    if let Some(v) = value_type {
        body.insert("value_type".into(), json!(v));
    }
    body.insert("value".into(), value);
    body.insert("restrictions".into(), restrictions);
    Some(BatchEdit {
        body: Value::Object(body),
    })
}

fn restrictions(r: &toml::Value, label: &str, errors: &mut Vec<String>) -> Value {
    let Some(t) = r.as_table() else {
        errors.push(format!("{label}: `edit.restrictions` must be a table"));
        return Value::Null;
    };
    let mut out = Map::new();
    for (side, lists) in t {
        if side != "include" && side != "exclude" {
            errors.push(format!(
                "{label}: unknown key `edit.restrictions.{side}` (include or exclude)"
            ));
            continue;
        }
        let Some(lists) = lists.as_table() else {
            errors.push(format!(
                "{label}: `edit.restrictions.{side}` must be a table"
            ));
            continue;
        };
        let mut side_out = Map::new();
        for (name, ids) in lists {
            if !LISTS.contains(&name.as_str()) {
                errors.push(format!(
                    "{label}: unknown key `edit.restrictions.{side}.{name}` ({})",
                    LISTS.join(", ")
                ));
                continue;
            }
            let ids: Option<Vec<i64>> = ids.as_array().and_then(|a| {
                a.iter()
                    .map(|v| v.as_integer().filter(|i| *i > 0))
                    .collect()
            });
            match ids {
                Some(ids) if !ids.is_empty() => {
                    side_out.insert(name.clone(), json!(ids));
                }
                _ => errors.push(format!(
                    "{label}: `edit.restrictions.{side}.{name}` must be a non-empty list of ids"
                )),
            }
        }
        out.insert(side.clone(), Value::Object(side_out));
    }
    if !out.contains_key("include") && !out.contains_key("exclude") {
        errors.push(format!(
            "{label}: `edit.restrictions` needs include or exclude: an edit of the whole catalog must say so with an exclude"
        ));
    }
    Value::Object(out)
}

/// The edit's `value` as a decimal, whichever of the accepted forms (integer, float, text) it had.
fn as_decimal(value: &Value) -> Option<rust_decimal::Decimal> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    text.parse()
        .ok()
        .or_else(|| rust_decimal::Decimal::from_scientific(&text).ok())
}

/// JSON with object keys sorted, so two spellings of one edit hash alike.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> (Option<BatchEdit>, Vec<String>) {
        let v: toml::Table = toml::from_str(&format!("edit = {src}")).unwrap();
        let mut errors = Vec::new();
        let e = validate(&v["edit"], "job bf", &mut errors);
        (e, errors)
    }

    #[test]
    fn the_documented_example_passes() {
        let (e, errors) = check(
            r#"{ attribute = "price_discount", operation_type = "decrement", value_type = "percent", value = 20, restrictions = { include = { brands_ids = [3] } } }"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        let body = e.unwrap().body;
        assert_eq!(body["restrictions"]["include"]["brands_ids"], json!([3]));
        assert_eq!(body["value"], json!(20));
    }

    #[test]
    fn a_percent_decrement_of_100_or_more_is_refused_in_every_form() {
        for value in ["100", "100.0", "\"100\"", "\"150.5\"", "1e3"] {
            let (e, errors) = check(&format!(
                r#"{{ attribute = "price_sale", operation_type = "decrement", value_type = "percent", value = {value}, restrictions = {{ include = {{ brands_ids = [3] }} }} }}"#
            ));
            assert!(e.is_none(), "{value}");
            assert!(
                errors.iter().any(|e| e.contains("100 or more")),
                "{value}: {errors:?}"
            );
        }
    }

    #[test]
    fn every_problem_is_named() {
        let (e, errors) = check(
            r#"{ attribute = "price", value = -1, restrictions = { include = { brand_ids = [3] } }, typo = 1 }"#,
        );
        assert!(e.is_none());
        let all = errors.join("\n");
        for needle in ["edit.typo", "edit.attribute", "edit.value", "brand_ids"] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        let (_, errors) = check(
            r#"{ attribute = "price_sale", value = 5, restrictions = { exclude = { brands_ids = [5] } } }"#,
        );
        assert!(
            errors.iter().any(|e| e.contains("operation_type")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("value_type")),
            "{errors:?}"
        );
    }
}
