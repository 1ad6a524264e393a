//! Every word the merchant reads in a run report (the workbook and the summary line), one table
//! per language. Log messages elsewhere stay English; only what a report shows is here.

/// The language of reports and summary lines (`language` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lang {
    /// Brazilian Portuguese: the merchants' language, the default.
    #[default]
    PtBr,
    En,
}

impl Lang {
    /// What `language` accepts, as `check` lists it.
    pub const ACCEPTED: &'static str = "\"pt-BR\", \"en\"";

    /// `"pt-BR"` or `"en"` (case-insensitive; `pt_BR` and `pt` too).
    pub fn parse(text: &str) -> Option<Lang> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "pt-br" | "pt" => Some(Lang::PtBr),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::PtBr => &PT_BR,
            Lang::En => &EN,
        }
    }
}

/// The words of one language.
pub struct Text {
    // Sheets.
    pub sheet_summary: &'static str,
    pub sheet_changes: &'static str,
    pub sheet_rejected: &'static str,
    pub sheet_unmatched: &'static str,
    pub sheet_differences: &'static str,
    pub sheet_batch_edit: &'static str,
    // The Summary sheet.
    pub field: &'static str,
    pub value: &'static str,
    pub job: &'static str,
    pub store: &'static str,
    pub kind: &'static str,
    pub started: &'static str,
    pub finished: &'static str,
    pub result: &'static str,
    pub exit_code: &'static str,
    pub dry_run: &'static str,
    pub full_push: &'static str,
    pub source_file: &'static str,
    pub source_hash: &'static str,
    pub rows_read: &'static str,
    pub valid_rows: &'static str,
    pub matched_skus: &'static str,
    pub changed_skus: &'static str,
    pub products_written: &'static str,
    pub products_failed: &'static str,
    pub unknown_outcomes: &'static str,
    pub rejected_rows: &'static str,
    pub unmatched_keys: &'static str,
    pub requests_sent: &'static str,
    pub answers_429: &'static str,
    pub requests_of: &'static str,
    pub planned_of: &'static str,
    pub sync_would_send_of: &'static str,
    pub differences: &'static str,
    pub skus_that_differ: &'static str,
    pub sync_would_send: &'static str,
    pub sync_would_take: &'static str,
    pub report: &'static str,
    pub yes: &'static str,
    pub no: &'static str,
    /// How a time is written: a `chrono` format, then the zone's name in parentheses.
    pub time_format: &'static str,
    // Item columns.
    pub col_key: &'static str,
    pub col_product: &'static str,
    pub col_variation: &'static str,
    pub col_sku_id: &'static str,
    pub col_product_id: &'static str,
    pub col_field: &'static str,
    pub col_cell_text: &'static str,
    pub col_old: &'static str,
    pub col_old_from: &'static str,
    pub col_new: &'static str,
    pub col_outcome: &'static str,
    pub col_file: &'static str,
    pub col_row: &'static str,
    pub col_column: &'static str,
    pub col_value: &'static str,
    pub col_reason: &'static str,
    pub col_store: &'static str,
    pub col_erp: &'static str,
    pub not_in_export: &'static str,
    // Where an old value comes from.
    pub old_pushed: &'static str,
    pub old_store: &'static str,
    pub old_unknown: &'static str,
    // Fields.
    pub quantity: &'static str,
    pub min_quantity: &'static str,
    pub stock_word: &'static str,
    pub price_sale: &'static str,
    pub price_discount: &'static str,
    pub price_cost: &'static str,
    // Outcomes.
    pub planned: &'static str,
    pub planned_dry_run: &'static str,
    pub applied: &'static str,
    pub already_applied: &'static str,
    /// Put before a failure's message.
    pub failed: &'static str,
    /// Put before the reason an outcome is unknown.
    pub outcome_unknown: &'static str,
    // Kinds.
    pub kind_stock: &'static str,
    pub kind_price: &'static str,
    pub kind_audit: &'static str,
    pub kind_batch_edit: &'static str,
    // The batch-edit sheet.
    pub edit_occurrence: &'static str,
    pub edit_attribute: &'static str,
    pub edit_operation: &'static str,
    pub edit_value: &'static str,
    pub edit_value_type: &'static str,
    pub edit_products: &'static str,
    pub edit_all_products: &'static str,
    pub edit_by_filter: &'static str,
    pub edit_request: &'static str,
    pub edit_include: &'static str,
    pub edit_exclude: &'static str,
    pub edit_increment: &'static str,
    pub edit_decrement: &'static str,
    pub edit_percent: &'static str,
    pub edit_fixed: &'static str,
    pub edit_active: &'static str,
    pub edit_all_prices: &'static str,
    /// The restriction lists: products_ids, brands_ids, collections_ids, categories_ids.
    pub edit_lists: [&'static str; 4],
    // The console.
    pub done: &'static str,
    pub done_with_rejected: &'static str,
    pub summary: fn(&Counts<'_>) -> String,
    pub rejected_line: RejectedLine,
    pub unmatched_line: fn(key: &str, row: u64, reason: &str) -> String,
    pub more_line: fn(n: usize, what: More, place: Option<&str>) -> String,
    pub not_pushed_yet: &'static str,
}

impl Text {
    /// A run's result message: the standard ones in this language, any other as written (the
    /// pipeline's detailed messages are English, as the log is).
    pub fn result_message<'a>(&self, message: &'a str) -> std::borrow::Cow<'a, str> {
        match message {
            "" | "done" => self.done.into(),
            "done, with rejected items" => self.done_with_rejected.into(),
            other => other.into(),
        }
    }
}

/// One rejected row on the console: file, row, the cell (column, text) when known, reason.
pub type RejectedLine = fn(&str, u64, Option<(&str, &str)>, &str) -> String;

/// Which list a "… and N more" line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum More {
    Rejected,
    Unmatched,
    Changes,
}

/// What the summary line counts.
pub struct Counts<'a> {
    pub job: &'a str,
    pub message: &'a str,
    pub changed_skus: u64,
    pub writes: u64,
    /// Files sent as spreadsheet imports: `writes` then counts their lines.
    pub import_files: u64,
    pub failed: u64,
    pub unknown: u64,
    pub rows: u64,
    pub rejected: usize,
    pub unmatched: usize,
    pub requests: u64,
    pub rate_limited: u64,
    pub exit: i32,
    pub already_applied: u64,
    /// Audits: how many differences.
    pub differences: Option<usize>,
    pub dry_run: bool,
    pub report: Option<String>,
}

/// "1 write", "0 writes", "2 writes".
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary_en(c: &Counts<'_>) -> String {
    let mut s = format!(
        "job {}: {} — {} changed by {} ({} failed), {} read, {} rejected, {} unmatched, {}, {} × 429, exit {}",
        c.job,
        if c.message.is_empty() {
            "done"
        } else {
            c.message
        },
        counted(c.changed_skus, "SKU", "SKUs"),
        match c.import_files {
            0 => counted(c.writes, "write", "writes"),
            n => format!(
                "{} in {}",
                counted(c.writes, "import line", "import lines"),
                counted(n, "file", "files")
            ),
        },
        c.failed,
        counted(c.rows, "row", "rows"),
        c.rejected,
        c.unmatched,
        counted(c.requests, "request", "requests"),
        c.rate_limited,
        c.exit,
    );
    if c.unknown > 0 {
        s.push_str(&format!(", {} unknown", c.unknown));
    }
    if c.already_applied > 0 {
        s.push_str(&format!(
            ", {} found already applied",
            counted(c.already_applied, "interrupted write", "interrupted writes")
        ));
    }
    if let Some(d) = c.differences {
        s.push_str(&format!(", {d} differences"));
    }
    if c.dry_run {
        s.push_str(" (dry run: nothing sent)");
    }
    if let Some(p) = &c.report {
        s.push_str(&format!(", report {p}"));
    }
    s
}

fn summary_pt(c: &Counts<'_>) -> String {
    let mut s = format!(
        "job {}: {} — {} por {} ({} com falha), {}, {} {}, {} sem correspondência, {}, {} × 429, saída {}",
        c.job,
        PT_BR.result_message(c.message),
        counted(c.changed_skus, "SKU alterado", "SKUs alterados"),
        match c.import_files {
            0 => counted(c.writes, "gravação", "gravações"),
            n => format!(
                "{} em {}",
                counted(c.writes, "linha importada", "linhas importadas"),
                counted(n, "arquivo", "arquivos")
            ),
        },
        c.failed,
        counted(c.rows, "linha lida", "linhas lidas"),
        c.rejected,
        if c.rejected == 1 {
            "rejeitada"
        } else {
            "rejeitadas"
        },
        c.unmatched,
        counted(c.requests, "requisição", "requisições"),
        c.rate_limited,
        c.exit,
    );
    if c.unknown > 0 {
        s.push_str(&format!(
            ", {}",
            counted(
                c.unknown,
                "com resultado desconhecido",
                "com resultado desconhecido"
            )
        ));
    }
    if c.already_applied > 0 {
        s.push_str(&format!(
            ", {}",
            counted(
                c.already_applied,
                "gravação interrompida já aplicada",
                "gravações interrompidas já aplicadas"
            )
        ));
    }
    if let Some(d) = c.differences {
        s.push_str(&format!(", {d} diferenças"));
    }
    if c.dry_run {
        s.push_str(" (simulação: nada enviado)");
    }
    if let Some(p) = &c.report {
        s.push_str(&format!(", relatório {p}"));
    }
    s
}

pub static EN: Text = Text {
    sheet_summary: "Summary",
    sheet_changes: "Changes",
    sheet_rejected: "Rejected rows",
    sheet_unmatched: "Unmatched keys",
    sheet_differences: "Differences",
    sheet_batch_edit: "Batch edit",
    field: "Field",
    value: "Value",
    job: "Job",
    store: "Store",
    kind: "Kind",
    started: "Started",
    finished: "Finished",
    result: "Result",
    exit_code: "Exit code",
    dry_run: "Dry run",
    full_push: "Full push",
    source_file: "Source file",
    source_hash: "Source hash (blake3)",
    rows_read: "Rows read",
    valid_rows: "Valid rows",
    matched_skus: "Matched SKUs",
    changed_skus: "Changed SKUs",
    products_written: "Products written",
    products_failed: "Products failed",
    unknown_outcomes: "Outcomes unknown",
    rejected_rows: "Rejected rows",
    unmatched_keys: "Unmatched keys",
    requests_sent: "Requests sent",
    answers_429: "429 answers",
    requests_of: "Requests",
    planned_of: "Planned",
    sync_would_send_of: "A sync would send",
    differences: "Differences",
    skus_that_differ: "SKUs that differ",
    sync_would_send: "A sync would send (requests)",
    sync_would_take: "A sync would take (seconds)",
    report: "Report",
    yes: "yes",
    no: "no",
    time_format: "%Y-%m-%d %H:%M:%S",
    col_key: "key",
    col_product: "product",
    col_variation: "variation",
    col_sku_id: "sku id",
    col_product_id: "product id",
    col_field: "field",
    col_cell_text: "cell text",
    col_old: "old",
    col_old_from: "old is",
    col_new: "new",
    col_outcome: "outcome",
    col_file: "file",
    col_row: "row",
    col_column: "column",
    col_value: "value",
    col_reason: "reason",
    col_store: "store",
    col_erp: "erp",
    not_in_export: "(not in the export)",
    old_pushed: "last pushed by this job",
    old_store: "the store's value",
    old_unknown: "unknown",
    quantity: "quantity",
    min_quantity: "min_quantity",
    stock_word: "stock",
    price_sale: "price_sale",
    price_discount: "price_discount",
    price_cost: "price_cost",
    planned: "planned",
    planned_dry_run: "planned (dry run)",
    applied: "applied",
    already_applied: "already applied (checked after an interrupted run)",
    failed: "",
    outcome_unknown: "outcome unknown",
    kind_stock: "stock",
    kind_price: "price",
    kind_audit: "audit",
    kind_batch_edit: "batch_edit",
    edit_occurrence: "Occurrence",
    edit_attribute: "Field edited",
    edit_operation: "Operation",
    edit_value: "Value",
    edit_value_type: "Value type",
    edit_products: "Products covered",
    edit_all_products: "every product of the store (no restriction)",
    edit_by_filter: "by filter (the store chooses the products)",
    edit_request: "Request sent",
    edit_include: "only",
    edit_exclude: "all but",
    edit_increment: "increase",
    edit_decrement: "decrease",
    edit_percent: "percent",
    edit_fixed: "fixed amount",
    edit_active: "active",
    edit_all_prices: "all prices",
    edit_lists: ["products", "brands", "collections", "categories"],
    done: "done",
    done_with_rejected: "done, with rejected items",
    summary: summary_en,
    rejected_line: |file, row, cell, reason| {
        let cell = cell.map_or_else(String::new, |(c, v)| format!(", column {c} = \"{v}\""));
        format!("rejected: {file} row {row}{cell}: {reason}")
    },
    unmatched_line: |key, row, reason| format!("unmatched: key \"{key}\" (row {row}): {reason}"),
    more_line: |n, what, place| match what {
        More::Rejected => format!(
            "… and {n} more rejected rows in {}",
            place.unwrap_or("the report")
        ),
        More::Unmatched => format!(
            "… and {n} more unmatched keys in {}",
            place.unwrap_or("the report")
        ),
        More::Changes => format!("… and {n} more changes in the report"),
    },
    not_pushed_yet: "(not pushed yet; the store's value is unknown)",
};

pub static PT_BR: Text = Text {
    sheet_summary: "Resumo",
    sheet_changes: "Alterações",
    sheet_rejected: "Linhas rejeitadas",
    sheet_unmatched: "Chaves sem correspondência",
    sheet_differences: "Diferenças",
    sheet_batch_edit: "Edição em lote",
    field: "Campo",
    value: "Valor",
    job: "Job",
    store: "Loja",
    kind: "Tipo",
    started: "Início",
    finished: "Fim",
    result: "Resultado",
    exit_code: "Código de saída",
    dry_run: "Simulação",
    full_push: "Envio completo",
    source_file: "Arquivo de origem",
    source_hash: "Hash do arquivo (blake3)",
    rows_read: "Linhas lidas",
    valid_rows: "Linhas válidas",
    matched_skus: "SKUs encontrados",
    changed_skus: "SKUs alterados",
    products_written: "Produtos gravados",
    products_failed: "Produtos com falha",
    unknown_outcomes: "Resultados desconhecidos",
    rejected_rows: "Linhas rejeitadas",
    unmatched_keys: "Chaves sem correspondência",
    requests_sent: "Requisições enviadas",
    answers_429: "Respostas 429",
    requests_of: "Requisições",
    planned_of: "Planejado",
    sync_would_send_of: "Uma sincronização enviaria",
    differences: "Diferenças",
    skus_that_differ: "SKUs com diferença",
    sync_would_send: "Uma sincronização enviaria (requisições)",
    sync_would_take: "Uma sincronização levaria (segundos)",
    report: "Relatório",
    yes: "sim",
    no: "não",
    time_format: "%d/%m/%Y %H:%M:%S",
    col_key: "chave",
    col_product: "produto",
    col_variation: "variação",
    col_sku_id: "id do SKU",
    col_product_id: "id do produto",
    col_field: "campo",
    col_cell_text: "texto da célula",
    col_old: "anterior",
    col_old_from: "anterior é",
    col_new: "novo",
    col_outcome: "resultado",
    col_file: "arquivo",
    col_row: "linha",
    col_column: "coluna",
    col_value: "valor",
    col_reason: "motivo",
    col_store: "loja",
    col_erp: "erp",
    not_in_export: "(fora da exportação)",
    old_pushed: "último valor enviado por este job",
    old_store: "valor da loja",
    old_unknown: "desconhecido",
    quantity: "estoque",
    min_quantity: "estoque mínimo",
    stock_word: "depósito",
    price_sale: "preço de venda",
    price_discount: "preço promocional",
    price_cost: "custo",
    planned: "planejado",
    planned_dry_run: "planejado (simulação)",
    applied: "aplicado",
    already_applied: "já aplicado (verificado após uma execução interrompida)",
    failed: "falhou",
    outcome_unknown: "resultado desconhecido",
    kind_stock: "estoque",
    kind_price: "preço",
    kind_audit: "auditoria",
    kind_batch_edit: "edição em lote",
    edit_occurrence: "Ocorrência",
    edit_attribute: "Campo editado",
    edit_operation: "Operação",
    edit_value: "Valor",
    edit_value_type: "Tipo de valor",
    edit_products: "Produtos abrangidos",
    edit_all_products: "todos os produtos da loja (sem restrição)",
    edit_by_filter: "por filtro (a loja escolhe os produtos)",
    edit_request: "Requisição enviada",
    edit_include: "somente",
    edit_exclude: "todos exceto",
    edit_increment: "aumentar",
    edit_decrement: "diminuir",
    edit_percent: "por cento",
    edit_fixed: "valor fixo",
    edit_active: "ativo",
    edit_all_prices: "todos os preços",
    edit_lists: ["produtos", "marcas", "coleções", "categorias"],
    done: "concluído",
    done_with_rejected: "concluído, com itens rejeitados",
    summary: summary_pt,
    rejected_line: |file, row, cell, reason| {
        let cell = cell.map_or_else(String::new, |(c, v)| format!(", coluna {c} = \"{v}\""));
        format!("rejeitada: {file} linha {row}{cell}: {reason}")
    },
    unmatched_line: |key, row, reason| {
        format!("sem correspondência: chave \"{key}\" (linha {row}): {reason}")
    },
    more_line: |n, what, place| match what {
        More::Rejected => format!(
            "… e mais {n} linhas rejeitadas em {}",
            place.unwrap_or("o relatório")
        ),
        More::Unmatched => format!(
            "… e mais {n} chaves sem correspondência em {}",
            place.unwrap_or("o relatório")
        ),
        More::Changes => format!("… e mais {n} alterações no relatório"),
    },
    not_pushed_yet: "(ainda não enviado; valor da loja desconhecido)",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse_and_default_to_portuguese() {
        assert_eq!(Lang::default(), Lang::PtBr);
        assert_eq!(Lang::parse("pt-BR"), Some(Lang::PtBr));
        assert_eq!(Lang::parse("pt_br"), Some(Lang::PtBr));
        assert_eq!(Lang::parse("en"), Some(Lang::En));
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::PtBr.text().sheet_summary, "Resumo");
        assert_eq!(Lang::En.text().sheet_summary, "Summary");
    }

    #[test]
    fn an_import_is_counted_in_lines_and_files() {
        let mut c = Counts {
            job: "precos",
            message: "",
            changed_skus: 300,
            writes: 300,
            import_files: 1,
            failed: 0,
            unknown: 0,
            rows: 300,
            rejected: 0,
            unmatched: 0,
            requests: 18,
            rate_limited: 0,
            exit: 0,
            already_applied: 0,
            differences: None,
            dry_run: false,
            report: None,
        };
        let pt = (PT_BR.summary)(&c);
        assert!(
            pt.contains("300 SKUs alterados por 300 linhas importadas em 1 arquivo (0 com falha)"),
            "{pt}"
        );
        let en = (EN.summary)(&c);
        assert!(
            en.contains("300 SKUs changed by 300 import lines in 1 file (0 failed)"),
            "{en}"
        );
        c.import_files = 0;
        assert!((PT_BR.summary)(&c).contains("por 300 gravações"));
    }
}
