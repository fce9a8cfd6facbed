//! Erasing a customer's personal data from an order (a shop's `customers/redact`), keeping
//! its audit trail whole: every event stays, with the same kind, stages, actor and time; only
//! its free text and the contact details it recorded are replaced. The audit log refuses
//! updates except while a redaction of its order is open in the same transaction (migration
//! 0010), and the redaction itself is kept.

use serde_json::Value;

use super::{Db, Tx, on_read, on_tx};

/// What replaces erased free text.
pub const REDACTED: &str = "[redacted]";

/// Orders linked to a Shopify order whose key (`{shop}/{id}`) starts with `prefix`.
pub async fn orders_linked_like(db: &Db, source: &str, prefix: &str) -> Result<Vec<i64>, sqlx::Error> {
    const SQL: &str = "SELECT order_id FROM order_links WHERE source = $1 AND substr(external_id, 1, length($2)) = $2";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(source).bind(prefix).fetch_all(conn).await)
}

/// Orders of `source` whose customer has this email (case-insensitive).
pub async fn linked_orders_by_email(db: &Db, source: &str, email: &str) -> Result<Vec<i64>, sqlx::Error> {
    const SQL: &str = "SELECT o.id FROM orders o JOIN order_links l ON l.order_id = o.id \
        WHERE l.source = $1 AND lower(o.customer_email) = lower($2)";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(source).bind(email).fetch_all(conn).await)
}

/// Replaces the personal data of order `order_id` with `pseudonym` inside `tx`: the order's
/// customer and notes, its messages, its photos' captions, and its events' notes and the
/// contact details they recorded. Returns how many events were rewritten.
pub async fn redact_order(
    tx: &mut Tx,
    order_id: i64,
    pseudonym: &str,
    reason: &str,
    now_ms: i64,
) -> Result<u64, sqlx::Error> {
    const OPEN: &str = "INSERT INTO redactions (order_id, pseudonym, reason, in_progress, created_at) VALUES ($1, $2, $3, 1, $4) RETURNING id";
    const ORDER: &str = "UPDATE orders SET customer_name = $1, customer_email = NULL, customer_phone = NULL, \
        customer_telegram = NULL, customer_channels = '[]', notes = '', customer_note = '', search_text = $2, \
        version = version + 1, updated_at = $3 WHERE id = $4";
    const MESSAGES: &str = "UPDATE outbox SET recipient = $1, payload = '{\"redacted\":true}' \
        WHERE order_id = $2 AND channel IS NOT NULL";
    const ATTEMPTS: &str = "UPDATE outbox_attempts SET detail = $1 \
        WHERE job_id IN (SELECT id FROM outbox WHERE order_id = $2 AND channel IS NOT NULL)";
    const CAPTIONS: &str = "UPDATE photos SET caption = NULL WHERE order_id = $1 AND caption IS NOT NULL";
    const EVENTS: &str = "SELECT id, note, internal_note, data FROM order_events WHERE order_id = $1 ORDER BY id";
    const EVENT: &str = "UPDATE order_events SET note = $1, internal_note = $2, data = $3 WHERE id = $4";
    // The webhook bodies about the order carry the same data.
    const INBOX: &str = "UPDATE inbox SET payload = '{\"redacted\":true}' WHERE order_id = $1 \
        OR subject IN (SELECT external_id FROM order_links WHERE order_id = $1)";
    const CLOSE: &str = "UPDATE redactions SET in_progress = 0 WHERE id = $1";

    let id: i64 = on_tx!(tx, |conn| {
        sqlx::query_scalar(OPEN).bind(order_id).bind(pseudonym).bind(reason).bind(now_ms).fetch_one(conn).await
    })?;
    let reference: String = on_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT reference FROM orders WHERE id = $1").bind(order_id).fetch_one(conn).await
    })?;
    let search = format!("{reference} {pseudonym}").to_lowercase();
    on_tx!(tx, |conn| {
        sqlx::query(ORDER).bind(pseudonym).bind(&search).bind(now_ms).bind(order_id).execute(conn).await.map(|_| ())
    })?;
    on_tx!(tx, |conn| sqlx::query(ATTEMPTS).bind(REDACTED).bind(order_id).execute(conn).await.map(|_| ()))?;
    on_tx!(tx, |conn| sqlx::query(MESSAGES).bind(pseudonym).bind(order_id).execute(conn).await.map(|_| ()))?;
    on_tx!(tx, |conn| sqlx::query(INBOX).bind(order_id).execute(conn).await.map(|_| ()))?;
    on_tx!(tx, |conn| sqlx::query(CAPTIONS).bind(order_id).execute(conn).await.map(|_| ()))?;
    let events: Vec<(i64, Option<String>, Option<String>, String)> =
        on_tx!(tx, |conn| sqlx::query_as(EVENTS).bind(order_id).fetch_all(conn).await)?;
    let mut rewritten = 0;
    for (event_id, note, internal_note, data) in events {
        let note = note.map(|_| REDACTED.to_owned());
        let internal_note = internal_note.map(|_| REDACTED.to_owned());
        let data = pseudonymise(&data, pseudonym);
        on_tx!(tx, |conn| {
            sqlx::query(EVENT)
                .bind(&note)
                .bind(&internal_note)
                .bind(&data)
                .bind(event_id)
                .execute(conn)
                .await
                .map(|_| ())
        })?;
        rewritten += 1;
    }
    on_tx!(tx, |conn| sqlx::query(CLOSE).bind(id).execute(conn).await.map(|_| ()))?;
    Ok(rewritten)
}

/// An event's data with the contact details it recorded (`changed.customer.*`) replaced:
/// the name by the pseudonym, the rest by `[redacted]`.
fn pseudonymise(data: &str, pseudonym: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(data) else {
        return data.to_owned();
    };
    if let Some(changed) = v.get_mut("changed").and_then(Value::as_object_mut) {
        for (field, change) in changed.iter_mut() {
            let Some(what) = field.strip_prefix("customer.") else {
                continue;
            };
            if what == "language" || what == "timezone" || what == "channels" {
                continue;
            }
            let replacement = if what == "name" { pseudonym } else { REDACTED };
            for side in ["from", "to"] {
                if let Some(value) = change.get_mut(side).filter(|v| !v.is_null()) {
                    *value = Value::String(replacement.to_owned());
                }
            }
        }
    }
    v.to_string()
}

/// Erases what a customer's compliance requests carried (their bodies name the person) and the
/// exports made for them, once the person is erased.
pub async fn forget_requests(
    db: &Db,
    source: &str,
    subject: &str,
    export_subjects: &[String],
) -> Result<(), sqlx::Error> {
    const INBOX: &str = "UPDATE inbox SET payload = '{\"redacted\":true}' WHERE source = $1 AND subject = $2";
    const EXPORTS: &str = "DELETE FROM data_exports WHERE source = $1 AND subject = $2";
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |conn| sqlx::query(INBOX).bind(source).bind(subject).execute(conn).await.map(|_| ()))?;
    for s in export_subjects {
        on_tx!(&mut tx, |conn| sqlx::query(EXPORTS).bind(source).bind(s).execute(conn).await.map(|_| ()))?;
    }
    tx.commit().await
}

/// Pseudonyms given so far to the orders of a redaction, newest first (for tests and tools).
pub async fn pseudonyms(db: &Db, order_id: i64) -> Result<Vec<String>, sqlx::Error> {
    const SQL: &str = "SELECT pseudonym FROM redactions WHERE order_id = $1 ORDER BY id DESC";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(order_id).fetch_all(conn).await)
}

/// Saves a customer's data export (a `customers/data_request`); returns its id.
pub async fn save_export(db: &Db, source: &str, subject: &str, body: &str, now_ms: i64) -> Result<i64, sqlx::Error> {
    const SQL: &str =
        "INSERT INTO data_exports (source, subject, body, created_at) VALUES ($1, $2, $3, $4) RETURNING id";
    let mut tx = db.begin().await?;
    let id = on_tx!(&mut tx, |conn| {
        sqlx::query_scalar(SQL).bind(source).bind(subject).bind(body).bind(now_ms).fetch_one(conn).await
    })?;
    tx.commit().await?;
    Ok(id)
}

/// A saved data export: who it is about and its JSON body.
pub async fn export(db: &Db, id: i64) -> Result<Option<(String, String, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT subject, body, created_at FROM data_exports WHERE id = $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(id).fetch_optional(conn).await)
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_contact_details_are_replaced_and_the_rest_kept() {
        let data = r#"{"changed":{"customer.name":{"from":"Ana","to":"Ana R"},"customer.email":{"from":null,"to":"a@b.co"},"due_date":{"from":null,"to":"2027-01-01"}}}"#;
        let v: serde_json::Value = serde_json::from_str(&super::pseudonymise(data, "Customer 1a2b")).expect("json");
        assert_eq!(v["changed"]["customer.name"]["to"], "Customer 1a2b");
        assert_eq!(v["changed"]["customer.email"]["from"], serde_json::Value::Null);
        assert_eq!(v["changed"]["customer.email"]["to"], "[redacted]");
        assert_eq!(v["changed"]["due_date"]["to"], "2027-01-01");
    }
}
