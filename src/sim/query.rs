//! Query-string handling: decoding, the pagination envelope, and the SKU list filters
//! (exact filters, the legacy `search`/`searchFields`/`searchJoin` syntax, `date=` ranges, ordering).

use chrono::{NaiveDate, NaiveDateTime};
use reqwest::Url;
use serde_json::{Value, json};

use super::catalog::Sku;

pub(super) const DEFAULT_PER_PAGE: usize = 10;
/// Undocumented upstream; community clients use 100, so larger values are clamped to it.
pub(super) const MAX_PER_PAGE: usize = 100;

/// Decoded query pairs in their original order.
#[derive(Debug, Default)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(super) fn parse(raw: &str) -> Query {
        let pairs = Url::parse(&format!("http://q/?{raw}"))
            .map(|u| {
                u.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Query { pairs }
    }

    /// First value of `key`; an empty value counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `include` (comma-separated) names `what`.
    pub(super) fn includes(&self, what: &str) -> bool {
        self.get("include")
            .is_some_and(|inc| inc.split(',').any(|i| i.trim() == what))
    }
}

/// Requested page: `page` defaults to 1, `limit` to 10 and is clamped to 1..=100.
#[derive(Clone, Copy, Debug)]
pub(super) struct PageReq {
    pub page: usize,
    pub per_page: usize,
}

impl PageReq {
    pub(super) fn from_query(q: &Query) -> PageReq {
        let page = q
            .get("page")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|p| *p > 0)
            .unwrap_or(1);
        let per_page = q
            .get("limit")
            .and_then(|l| l.trim().parse::<usize>().ok())
            .map(|l| l.clamp(1, MAX_PER_PAGE))
            .unwrap_or(DEFAULT_PER_PAGE);
        PageReq { page, per_page }
    }
}

/// How the pagination envelope is rendered, and which pagination faults apply.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct PageStyle {
    /// Numbers as numeric strings and missing links as `""`, as the endpoint docs show.
    pub strings: bool,
    /// `"meta": null`.
    pub meta_null: bool,
    /// Pages never end: data on every page past the real ones (new ids), `total_pages` 10^9.
    pub endless: bool,
    /// With `endless`, `total` 10^11 as well.
    pub inflated_total: bool,
    /// The last page links back to page 1; pages past the end wrap around.
    pub wrap: bool,
}

/// Ids of items on endless pages are the real ones plus this, times the page number.
const ENDLESS_ID_STEP: u64 = 10_000_000;

/// Builds `{"data": [...], "meta": {"pagination": ...}}` for one page of `items`.
///
/// `link_base` is the full URL of the route without query; links keep the request's other
/// query parameters. Only the items on the requested page are rendered.
pub(super) fn paginate<T>(
    items: Vec<T>,
    req: PageReq,
    q: &Query,
    link_base: &str,
    style: PageStyle,
    render: impl FnMut(T) -> Value,
) -> Value {
    let strings = style.strings;
    let total = items.len();
    let real_pages = total.div_ceil(req.per_page).max(1);
    let past_end = req.page > real_pages;
    // The page whose items are served (the requested one unless a fault wraps it).
    let served = if past_end && (style.wrap || style.endless) {
        (req.page - 1) % real_pages + 1
    } else {
        req.page
    };
    let mut data: Vec<Value> = items
        .into_iter()
        .skip((served - 1).saturating_mul(req.per_page))
        .take(req.per_page)
        .map(render)
        .collect();
    if style.endless && past_end {
        let offset = req.page as u64 * ENDLESS_ID_STEP;
        for item in &mut data {
            if let Some(id) = item.get("id").and_then(Value::as_u64) {
                item["id"] = json!(id + offset);
            }
        }
    }
    if style.meta_null {
        return json!({ "data": data, "meta": null });
    }
    let (total, total_pages) = match (style.endless, style.inflated_total) {
        (true, true) => (100_000_000_000, 1_000_000_000),
        (true, false) => (total, 1_000_000_000),
        _ => (total, real_pages),
    };
    let current_page = if style.wrap { served } else { req.page };
    let count = data.len();
    let link = |page: usize| {
        let mut url = Url::parse(link_base).ok()?;
        {
            let mut qp = url.query_pairs_mut();
            qp.append_pair("page", &page.to_string());
            qp.append_pair("limit", &req.per_page.to_string());
            for (k, v) in q.pairs.iter().filter(|(k, _)| k != "page" && k != "limit") {
                qp.append_pair(k, v);
            }
        }
        Some(url.to_string())
    };
    let previous = (req.page > 1).then(|| link(req.page - 1)).flatten();
    let next = if style.wrap && served == real_pages {
        link(1)
    } else {
        (req.page < total_pages)
            .then(|| link(req.page + 1))
            .flatten()
    };
    let num = |n: usize| {
        if strings {
            json!(n.to_string())
        } else {
            json!(n)
        }
    };
    let mut links = serde_json::Map::new();
    for (name, l) in [("previous", previous), ("next", next)] {
        match (l, strings) {
            (Some(l), _) => {
                links.insert(name.to_owned(), json!(l));
            }
            (None, true) => {
                links.insert(name.to_owned(), json!(""));
            }
            (None, false) => {}
        }
    }
    json!({
        "data": data,
        "meta": {
            "pagination": {
                "total": num(total),
                "count": num(count),
                "per_page": num(req.per_page),
                "current_page": num(current_page),
                "total_pages": num(total_pages),
                "links": links,
            }
        }
    })
}

/// A query parameter the SKU listing cannot accept, with its Laravel-style message.
#[derive(Debug)]
pub(super) struct BadParam {
    pub field: &'static str,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Id,
    ProductId,
    Sku,
    ErpId,
    Barcode,
    Title,
}

impl Field {
    fn parse(name: &str) -> Option<Field> {
        Some(match name.trim() {
            "id" => Field::Id,
            "product_id" => Field::ProductId,
            "sku" => Field::Sku,
            "erp_id" => Field::ErpId,
            "barcode" => Field::Barcode,
            "title" => Field::Title,
            _ => return None,
        })
    }

    /// Ids compare exactly unless told otherwise; text fields default to `like`.
    fn default_cond(self) -> Cond {
        match self {
            Field::Id | Field::ProductId => Cond::Eq,
            _ => Cond::Like,
        }
    }

    fn value(self, sku: &Sku) -> Option<String> {
        match self {
            Field::Id => Some(sku.id.to_string()),
            Field::ProductId => Some(sku.product_id.to_string()),
            Field::Sku => Some(sku.sku.clone()),
            Field::ErpId => sku.erp_id.clone(),
            Field::Barcode => sku.barcode.clone(),
            Field::Title => Some(sku.title.clone()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cond {
    /// Case-insensitive substring, like MySQL's `LIKE %v%` on a `_ci` collation.
    Like,
    Eq,
}

#[derive(Debug)]
struct Term {
    field: Field,
    cond: Cond,
    value: String,
}

impl Term {
    fn matches(&self, sku: &Sku) -> bool {
        let Some(have) = self.field.value(sku) else {
            return false;
        };
        match self.cond {
            Cond::Eq => have == self.value,
            Cond::Like => have.to_lowercase().contains(&self.value.to_lowercase()),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateField {
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OrderBy {
    Id,
    UpdatedAt,
}

/// Filters and ordering of `GET /catalog/skus`.
#[derive(Debug)]
pub(super) struct SkuFilter {
    sku: Option<String>,
    erp_id: Option<String>,
    barcode: Option<String>,
    product_id: Option<String>,
    terms: Vec<Term>,
    join_and: bool,
    date: Option<(DateField, NaiveDateTime, NaiveDateTime)>,
    order: OrderBy,
    desc: bool,
    /// `orderBy` was given (the default order is only id ascending by convention).
    explicit_order: bool,
}

impl SkuFilter {
    pub(super) fn parse(q: &Query) -> Result<SkuFilter, BadParam> {
        let exact = |k: &str| q.get(k).map(str::to_owned);
        let order = match q.get("orderBy").map(str::trim) {
            None | Some("id") => OrderBy::Id,
            Some("updated_at") => OrderBy::UpdatedAt,
            Some(other) => {
                return Err(BadParam {
                    field: "orderBy",
                    message: format!("The orderBy field {other} is not sortable."),
                });
            }
        };
        Ok(SkuFilter {
            sku: exact("sku"),
            erp_id: exact("erp_id"),
            barcode: exact("barcode"),
            product_id: exact("product_id"),
            terms: parse_search(q),
            join_and: q
                .get("searchJoin")
                .is_some_and(|j| j.trim().eq_ignore_ascii_case("and")),
            date: q.get("date").map(parse_date_filter).transpose()?,
            order,
            explicit_order: q.get("orderBy").is_some(),
            desc: q
                .get("sortedBy")
                .is_some_and(|s| s.trim().eq_ignore_ascii_case("desc")),
        })
    }

    pub(super) fn matches(&self, sku: &Sku, created_at: NaiveDateTime) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        if !eq(&self.sku, Some(&sku.sku))
            || !eq(&self.erp_id, sku.erp_id.as_deref())
            || !eq(&self.barcode, sku.barcode.as_deref())
            || !eq(&self.product_id, Some(&sku.product_id.to_string()))
        {
            return false;
        }
        if let Some((field, from, to)) = self.date {
            let at = match field {
                DateField::CreatedAt => created_at,
                DateField::UpdatedAt => sku.updated_at,
            };
            if at < from || at > to {
                return false;
            }
        }
        if self.terms.is_empty() {
            return true;
        }
        if self.join_and {
            self.terms.iter().all(|t| t.matches(sku))
        } else {
            self.terms.iter().any(|t| t.matches(sku))
        }
    }

    /// Whether the listing asked for the stable order `orderBy=id&sortedBy=asc`.
    pub(super) fn by_id_asc(&self) -> bool {
        self.explicit_order && self.order == OrderBy::Id && !self.desc
    }

    /// Newest first (`updated_at` desc), as a listing without an explicit order may come.
    pub(super) fn newest_first(&mut self) {
        self.order = OrderBy::UpdatedAt;
        self.desc = true;
    }

    /// Sorts in place; ties on `updated_at` fall back to id ascending so pages are stable.
    pub(super) fn sort(&self, skus: &mut [&Sku]) {
        skus.sort_by(|a, b| {
            let ord = match self.order {
                OrderBy::Id => a.id.cmp(&b.id),
                OrderBy::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            };
            let ord = if self.desc { ord.reverse() } else { ord };
            ord.then(a.id.cmp(&b.id))
        });
    }
}

/// l5-repository style search: `field:value` parts (`;`-separated) search that field; a part
/// without a known field searches the `searchFields` fields, or sku/title/erp_id/barcode.
/// Conditions come from `searchFields=field:like|=`.
fn parse_search(q: &Query) -> Vec<Term> {
    let Some(search) = q.get("search") else {
        return Vec::new();
    };
    let fields: Vec<(Field, Option<Cond>)> = q
        .get("searchFields")
        .map(|sf| {
            sf.split(';')
                .filter_map(|part| {
                    let (name, cond) = match part.split_once(':') {
                        Some((n, c)) => (n, Some(c.trim())),
                        None => (part, None),
                    };
                    let cond = match cond {
                        Some("=") => Some(Cond::Eq),
                        Some(c) if c.eq_ignore_ascii_case("like") => Some(Cond::Like),
                        _ => None,
                    };
                    Field::parse(name).map(|f| (f, cond))
                })
                .collect()
        })
        .unwrap_or_default();
    let cond_of = |f: Field| {
        fields
            .iter()
            .find(|(g, _)| *g == f)
            .and_then(|(_, c)| *c)
            .unwrap_or(f.default_cond())
    };
    let plain_targets: Vec<Field> = if fields.is_empty() {
        vec![Field::Sku, Field::Title, Field::ErpId, Field::Barcode]
    } else {
        fields.iter().map(|(f, _)| *f).collect()
    };
    let mut terms = Vec::new();
    for part in search.split(';').filter(|p| !p.is_empty()) {
        match part
            .split_once(':')
            .and_then(|(n, v)| Some((Field::parse(n)?, v)))
        {
            Some((field, value)) => terms.push(Term {
                field,
                cond: cond_of(field),
                value: value.to_owned(),
            }),
            None => terms.extend(plain_targets.iter().map(|&field| Term {
                field,
                cond: cond_of(field),
                value: part.to_owned(),
            })),
        }
    }
    terms
}

/// `date=updated_at:FROM|TO`; each end is `YYYY-MM-DD` (whole day, inclusive) or
/// `YYYY-MM-DD HH:MM:SS`. An empty end is open; a single value means FROM = TO.
fn parse_date_filter(raw: &str) -> Result<(DateField, NaiveDateTime, NaiveDateTime), BadParam> {
    let bad = || BadParam {
        field: "date",
        message: "The date does not match the format field:Y-m-d|Y-m-d.".to_owned(),
    };
    let (field, range) = raw.split_once(':').ok_or_else(bad)?;
    let field = match field.trim() {
        "updated_at" => DateField::UpdatedAt,
        "created_at" => DateField::CreatedAt,
        _ => return Err(bad()),
    };
    let (from, to) = range.split_once('|').unwrap_or((range, range));
    let from = match from.trim() {
        "" => NaiveDateTime::MIN,
        s => parse_bound(s, false).ok_or_else(bad)?,
    };
    let to = match to.trim() {
        "" => NaiveDateTime::MAX,
        s => parse_bound(s, true).ok_or_else(bad)?,
    };
    Ok((field, from, to))
}

fn parse_bound(s: &str, end_of_day: bool) -> Option<NaiveDateTime> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return if end_of_day {
            d.and_hms_opt(23, 59, 59)
        } else {
            d.and_hms_opt(0, 0, 0)
        };
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok()
}

#[cfg(test)]
mod tests {
    use super::super::catalog::sample_catalog;
    use super::*;

    fn filter(raw: &str) -> (SkuFilter, Vec<Sku>) {
        let cat = sample_catalog(3, 2, 1);
        let skus = cat.products.into_iter().flat_map(|p| p.skus).collect();
        (SkuFilter::parse(&Query::parse(raw)).expect("valid"), skus)
    }

    fn ids(raw: &str) -> Vec<u64> {
        let (f, skus) = filter(raw);
        let mut hit: Vec<&Sku> = skus.iter().filter(|s| f.matches(s, s.updated_at)).collect();
        f.sort(&mut hit);
        hit.iter().map(|s| s.id).collect()
    }

    #[test]
    fn search_syntax() {
        assert_eq!(ids("sku=SKU-01001-2"), vec![50003]);
        assert_eq!(ids("sku=sku-01001-2"), Vec::<u64>::new());
        assert_eq!(
            ids("search=sku:01001&searchFields=sku:like"),
            vec![50002, 50003]
        );
        assert_eq!(
            ids("search=sku:SKU-01001-2&searchFields=sku:="),
            vec![50003]
        );
        assert_eq!(ids("search=SKU-01001-2&searchFields=sku:="), vec![50003]);
        assert_eq!(
            ids("search=sku:SKU-01001-2;erp_id:ERP50000"),
            vec![50000, 50003]
        );
        assert_eq!(
            ids("search=sku:01001;erp_id:ERP50003&searchJoin=and"),
            vec![50003]
        );
        assert_eq!(ids("search=erp50004"), vec![50004]);
        assert_eq!(ids("search=produto 1002"), vec![50004, 50005]);
        assert_eq!(
            ids("product_id=1000&orderBy=id&sortedBy=desc"),
            vec![50001, 50000]
        );
        assert_eq!(
            ids("date=updated_at:2025-01-06 09:17:00|2025-01-06 09:34:00"),
            vec![50001, 50002]
        );
        assert_eq!(ids("date=updated_at:2025-01-07|2025-01-08").len(), 0);
        assert_eq!(ids("date=updated_at:2025-01-06|2025-01-06").len(), 6);
        assert!(SkuFilter::parse(&Query::parse("date=updated_at:yesterday|")).is_err());
    }

    #[test]
    fn pagination_links_keep_params() {
        let q = Query::parse("search=a%20b&page=2&limit=2");
        let page = PageReq::from_query(&q);
        let items: Vec<i32> = (0..5).collect();
        let v = paginate(
            items,
            page,
            &q,
            "http://h/v2/demo/catalog/skus",
            PageStyle::default(),
            |i| json!(i),
        );
        let p = &v["meta"]["pagination"];
        assert_eq!(v["data"], json!([2, 3]));
        assert_eq!(p["total_pages"], json!(3));
        assert_eq!(
            p["links"]["next"],
            json!("http://h/v2/demo/catalog/skus?page=3&limit=2&search=a+b")
        );
        assert_eq!(
            p["links"]["previous"],
            json!("http://h/v2/demo/catalog/skus?page=1&limit=2&search=a+b")
        );
        assert_eq!(
            PageReq::from_query(&Query::parse("limit=1000")).per_page,
            100
        );
        assert_eq!(PageReq::from_query(&Query::parse("")).per_page, 10);
    }
}
