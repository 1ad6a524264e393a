//! `GET /notifications`: the calling user's notifications (a finished export's "Sua planilha de
//! produtos está pronta" with its `link`), newest first, paginated. Notifications belong to the
//! user whose token calls, not to the store.

use std::time::Instant;

use super::query::{PageReq, paginate};
use super::queues::notification_json;
use super::routes::{Ctx, Reply};

pub(super) fn list(cx: &mut Ctx) -> Reply {
    let q = cx.query();
    let owner = cx.caller_token();
    let now = Instant::now();
    let mut mine: Vec<_> = cx
        .st
        .queues
        .notifications
        .iter()
        .filter(|n| n.owner == owner && n.visible_at <= now)
        .collect();
    mine.reverse();
    let body = paginate(
        mine,
        PageReq::from_query(&q),
        &q,
        &cx.link_base(),
        cx.page_style(),
        notification_json,
    );
    Reply::new(200, body)
}
