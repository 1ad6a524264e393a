//! The standard results of a run, as sentences in the report's language.
//!
//! A run's `message` keeps the English sentence (run records, `status`, the log); the report and
//! the summary line show the one of the config's `language`. Details that come from elsewhere (a
//! path, the API's error text, the route note) are carried as they are.

use super::Lang;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    /// The source is what the last complete sync saw.
    Unchanged { file: String },
    /// A dry run planned `writes` requests (`what`: "stocks/sync", "price", or unsaid), then the
    /// kind's note (the route it chose, and why).
    DryRun {
        writes: u64,
        what: Option<&'static str>,
        note: Option<String>,
    },
    /// A batch edit's dry run: what it would apply.
    DryRunApply { what: String },
    /// A batch edit's dry run that would apply nothing, and why.
    DryRunNote { detail: String },
    /// Sending stopped early (credentials refused, store unreachable).
    Stopped { why: String },
    /// No file matches the job's source path.
    NoSourceFile { path: String },
    /// Guard: the file has no valid row.
    NoValidRows { file: String },
    /// Guard: the feed has fewer valid rows than `max_shrink_pct` allows.
    FeedShrank {
        pct: String,
        valid: u64,
        last: u64,
        max: String,
    },
    /// Guard: not one valid key matches a store SKU (a `match` or `key` that does not fit).
    NoKeyMatches {
        rows: u64,
        key: String,
        file: String,
        field: &'static str,
        mapping: String,
    },
    /// Guard: more matched SKUs would drop to zero stock than `max_zeroed_pct` allows.
    TooManyZeroed {
        zeroed: u64,
        matched: u64,
        pct: String,
        max: String,
    },
    /// An audit that found the store equal to the ERP.
    AuditMatches { matched: u64 },
    /// An audit that found differences, and what a sync would send to put them right.
    AuditDiffers {
        differences: usize,
        skus: usize,
        matched: u64,
        writes: u64,
        eta: String,
    },
}

impl RunResult {
    pub fn render(&self, lang: Lang) -> String {
        match lang {
            Lang::En => self.english(),
            Lang::PtBr => self.portuguese(),
        }
    }

    fn english(&self) -> String {
        match self {
            RunResult::Unchanged { file } => {
                format!("{file} is unchanged since the last complete sync; nothing to do")
            }
            RunResult::DryRun { writes, what, note } => {
                let what = what.map(|w| format!("{w} ")).unwrap_or_default();
                with_note(format!("dry run: {writes} {what}requests planned"), note)
            }
            RunResult::DryRunApply { what } => format!("dry run: would apply {what}"),
            RunResult::DryRunNote { detail } => format!("dry run: {detail}"),
            RunResult::Stopped { why } => format!("stopped: {why}"),
            RunResult::NoSourceFile { path } => format!("no file matches the source path {path}"),
            RunResult::NoValidRows { file } => {
                format!("guard: {file} has no valid rows; nothing was sent")
            }
            RunResult::FeedShrank {
                pct,
                valid,
                last,
                max,
            } => format!(
                "guard: the feed shrank {pct}% ({valid} valid rows, {last} last time; max_shrink_pct = {max}); nothing was sent"
            ),
            RunResult::NoKeyMatches {
                rows,
                key,
                file,
                field,
                mapping,
            } => format!(
                "none of the {rows} keys in column \"{key}\" of {file} matches a store SKU with match = \"{field}\"; check `match` and `key` in {mapping}; nothing was sent"
            ),
            RunResult::TooManyZeroed {
                zeroed,
                matched,
                pct,
                max,
            } => format!(
                "guard: {zeroed} of {matched} matched SKUs ({pct}%) would drop to zero stock (max_zeroed_pct = {max}); nothing was sent"
            ),
            RunResult::AuditMatches { matched } => format!(
                "audit: the store matches the ERP for all {matched} matched SKUs; nothing was written"
            ),
            RunResult::AuditDiffers {
                differences,
                skus,
                matched,
                writes,
                eta,
            } => format!(
                "audit: {differences} differences in {skus} of {matched} matched SKUs; a sync would send {writes} requests (about {eta}); nothing was written"
            ),
        }
    }

    fn portuguese(&self) -> String {
        match self {
            RunResult::Unchanged { file } => {
                format!("{file} não mudou desde a última sincronização completa; nada a fazer")
            }
            RunResult::DryRun { writes, what, note } => {
                let noun = one_or_many(*writes, "requisição", "requisições");
                let planned = one_or_many(*writes, "planejada", "planejadas");
                let what = match what {
                    Some("price") => " de preço".to_string(),
                    Some(w) => format!(" {w}"),
                    None => String::new(),
                };
                with_note(format!("simulação: {writes} {noun}{what} {planned}"), note)
            }
            RunResult::DryRunApply { what } => format!("simulação: aplicaria {what}"),
            RunResult::DryRunNote { detail } => format!("simulação: {detail}"),
            RunResult::Stopped { why } => format!("interrompido: {why}"),
            RunResult::NoSourceFile { path } => {
                format!("nenhum arquivo corresponde ao caminho da origem {path}")
            }
            RunResult::NoValidRows { file } => {
                format!("proteção: {file} não tem nenhuma linha válida; nada foi enviado")
            }
            RunResult::FeedShrank {
                pct,
                valid,
                last,
                max,
            } => format!(
                "proteção: o arquivo encolheu {}% ({valid} linhas válidas, {last} da última vez; max_shrink_pct = {max}); nada foi enviado",
                pct.replace('.', ",")
            ),
            RunResult::NoKeyMatches {
                rows,
                key,
                file,
                field,
                mapping,
            } => format!(
                "nenhuma das {rows} chaves da coluna \"{key}\" de {file} corresponde a um SKU da loja com match = \"{field}\"; confira `match` e `key` em {mapping}; nada foi enviado"
            ),
            RunResult::TooManyZeroed {
                zeroed,
                matched,
                pct,
                max,
            } => format!(
                "proteção: {zeroed} de {matched} SKUs encontrados ({}%) ficariam com estoque zero (max_zeroed_pct = {max}); nada foi enviado",
                pct.replace('.', ",")
            ),
            RunResult::AuditMatches { matched } => format!(
                "auditoria: a loja confere com o ERP nos {matched} SKUs encontrados; nada foi gravado"
            ),
            RunResult::AuditDiffers {
                differences,
                skus,
                matched,
                writes,
                eta,
            } => format!(
                "auditoria: {differences} {} em {skus} de {matched} SKUs encontrados; uma sincronização enviaria {writes} {} (cerca de {eta}); nada foi gravado",
                one_or_many(*differences as u64, "diferença", "diferenças"),
                one_or_many(*writes, "requisição", "requisições"),
            ),
        }
    }
}

fn one_or_many(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn with_note(s: String, note: &Option<String>) -> String {
    match note {
        Some(n) => format!("{s}; {n}"),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_results_read_in_either_language() {
        let r = RunResult::Unchanged {
            file: "/erp/estoque.csv".into(),
        };
        assert_eq!(
            r.render(Lang::En),
            "/erp/estoque.csv is unchanged since the last complete sync; nothing to do"
        );
        assert_eq!(
            r.render(Lang::PtBr),
            "/erp/estoque.csv não mudou desde a última sincronização completa; nada a fazer"
        );
        let d = RunResult::DryRun {
            writes: 3,
            what: Some("price"),
            note: Some("the API".into()),
        };
        assert_eq!(
            d.render(Lang::En),
            "dry run: 3 price requests planned; the API"
        );
        assert_eq!(
            d.render(Lang::PtBr),
            "simulação: 3 requisições de preço planejadas; the API"
        );
        let one = RunResult::DryRun {
            writes: 1,
            what: Some("stocks/sync"),
            note: None,
        };
        assert_eq!(
            one.render(Lang::PtBr),
            "simulação: 1 requisição stocks/sync planejada"
        );
        let a = RunResult::AuditDiffers {
            differences: 1,
            skus: 1,
            matched: 9,
            writes: 1,
            eta: "0s".into(),
        };
        assert!(
            a.render(Lang::PtBr)
                .starts_with("auditoria: 1 diferença em 1 de 9")
        );
        assert!(
            a.render(Lang::En)
                .starts_with("audit: 1 differences in 1 of 9")
        );
    }
}
