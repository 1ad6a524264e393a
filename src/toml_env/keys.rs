//! "Did you mean": the keys a file's type knows, per table, and the nearest one to a typo.
//!
//! The known keys come from the serde types themselves (a probing deserializer records the field
//! names each struct asks for), so the hint can never list a key the loader would not accept.

use std::cell::RefCell;
use std::collections::HashMap;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// Table path (`""`, `store`, `store.limits`, `job.source`; array indices left out) → its keys.
pub type KnownKeys = HashMap<String, &'static [&'static str]>;

pub fn known_keys<T: serde::de::DeserializeOwned>() -> KnownKeys {
    let out = RefCell::new(HashMap::new());
    // The probe's made-up values may fail a field's own checks; the keys are recorded by then.
    let _ = T::deserialize(Probe {
        path: String::new(),
        out: &out,
    });
    out.into_inner()
}

/// The known key nearest to the unknown one at `path` (serde_ignored's form: `job.0.schedul`),
/// when it is close enough to be a typo.
pub fn suggestion(known: &KnownKeys, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path
        .split('.')
        .filter(|p| p.parse::<usize>().is_err())
        .collect();
    let (key, table) = parts.split_last()?;
    let candidates = known.get(&table.join("."))?;
    let (best, distance) = candidates
        .iter()
        .map(|c| (*c, edit_distance(key, c)))
        .min_by_key(|(_, d)| *d)?;
    (distance > 0 && distance <= (key.chars().count() / 3).max(1)).then_some(best)
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

struct Probe<'a> {
    path: String,
    out: &'a RefCell<KnownKeys>,
}

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe stopped")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

macro_rules! probe_as {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    probe_as! {
        deserialize_any => visit_str("0"),
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i64(0),
        deserialize_i16 => visit_i64(0),
        deserialize_i32 => visit_i64(0),
        deserialize_i64 => visit_i64(0),
        deserialize_u8 => visit_u64(0),
        deserialize_u16 => visit_u64(0),
        deserialize_u32 => visit_u64(0),
        deserialize_u64 => visit_u64(0),
        deserialize_f32 => visit_f64(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('0'),
        deserialize_str => visit_str("0"),
        deserialize_string => visit_str("0"),
        deserialize_bytes => visit_bytes(b"0"),
        deserialize_byte_buf => visit_bytes(b"0"),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str("0"),
        deserialize_ignored_any => visit_unit(),
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_some(self)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneElement(Some(self)))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneElement(Some(self)))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        visitor.visit_seq(OneElement(Some(self)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_map(Fields {
            probe: self,
            fields: &[],
            at: 0,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.out.borrow_mut().insert(self.path.clone(), fields);
        visitor.visit_map(Fields {
            probe: self,
            fields,
            at: 0,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        let first: &'static str = variants.first().copied().ok_or(Stop)?;
        visitor.visit_enum(IntoDeserializer::<Stop>::into_deserializer(first))
    }
}

struct OneElement<'a>(Option<Probe<'a>>);

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Stop;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Stop> {
        self.0.take().map(|p| seed.deserialize(p)).transpose()
    }
}

struct Fields<'a> {
    probe: Probe<'a>,
    fields: &'static [&'static str],
    at: usize,
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Stop;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        match self.fields.get(self.at) {
            Some(f) => seed
                .deserialize(IntoDeserializer::<Stop>::into_deserializer(*f))
                .map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        let field = self.fields[self.at];
        self.at += 1;
        let path = if self.probe.path.is_empty() {
            field.to_string()
        } else {
            format!("{}.{field}", self.probe.path)
        };
        seed.deserialize(Probe {
            path,
            out: self.probe.out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_key_within_a_third_of_its_length() {
        assert_eq!(edit_distance("schedul", "schedule"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        let mut known = KnownKeys::new();
        known.insert("job".into(), &["name", "schedule", "source"]);
        known.insert("job.source".into(), &["path", "settle_ms"]);
        assert_eq!(suggestion(&known, "job.0.schedul"), Some("schedule"));
        assert_eq!(
            suggestion(&known, "job.2.source.setle_ms"),
            Some("settle_ms")
        );
        assert_eq!(suggestion(&known, "job.0.colour"), None);
        assert_eq!(suggestion(&known, "nowhere.x"), None);
    }
}
