//! Why a row was rejected or a key matched nothing, in both languages of the report: the report
//! and the console show the text of the report's `language`; logs, `explain` and comparisons use
//! the English one.

use std::borrow::Cow;
use std::fmt;

use rust_decimal::Decimal;

use super::text::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    en: Cow<'static, str>,
    pt: Cow<'static, str>,
}

impl Reason {
    /// A reason whose texts are fixed (shared by every row that has it).
    pub const fn fixed(en: &'static str, pt: &'static str) -> Self {
        Self {
            en: Cow::Borrowed(en),
            pt: Cow::Borrowed(pt),
        }
    }

    pub fn new(en: impl Into<Cow<'static, str>>, pt: impl Into<Cow<'static, str>>) -> Self {
        Self {
            en: en.into(),
            pt: pt.into(),
        }
    }

    /// The text in `lang`.
    pub fn text(&self, lang: Lang) -> &str {
        match lang {
            Lang::En => &self.en,
            Lang::PtBr => &self.pt,
        }
    }

    /// The English text.
    pub fn en(&self) -> &str {
        &self.en
    }

    /// The reason of the row whose key is `key`: "… (key K)", "… (chave K)".
    pub fn for_key(self, key: &str) -> Self {
        Self::new(
            format!("{} (key {key})", self.en),
            format!("{} (chave {key})", self.pt),
        )
    }

    /// Both texts passed through `f` when `f` changes one of them (credentials scrubbed).
    pub fn map_texts(&mut self, f: impl Fn(&str) -> Option<String>) {
        if let Some(en) = f(&self.en) {
            self.en = en.into();
        }
        if let Some(pt) = f(&self.pt) {
            self.pt = pt.into();
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.en)
    }
}

/// As its English text (`explain`'s JSON, which is English throughout).
impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.en)
    }
}

impl std::ops::Deref for Reason {
    type Target = str;

    fn deref(&self) -> &str {
        &self.en
    }
}

/// Money as a Portuguese text shows it: two decimals after a comma ("80,00").
pub fn pt_money(d: Decimal) -> String {
    format!("{d:.2}").replace('.', ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_has_its_text_and_the_key_is_named_in_both() {
        let r = Reason::fixed("not a number", "não é um número").for_key("A-1");
        assert_eq!(r.text(Lang::En), "not a number (key A-1)");
        assert_eq!(r.text(Lang::PtBr), "não é um número (chave A-1)");
        assert_eq!(r.to_string(), "not a number (key A-1)");
        assert_eq!(pt_money(Decimal::new(8, 0)), "8,00");
    }
}
