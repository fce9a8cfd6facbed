//! What the database knows about each photo; the bytes live in the media store.

use sqlx::FromRow;

use super::{Db, corrupt, from_ms, on_read, on_tx};
use crate::domain::order::Visibility;

/// A stored photo's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Photo {
    /// Id, listed by the events that show it.
    pub id: i64,
    /// The order it belongs to.
    pub order_id: i64,
    /// Customer-visible or internal.
    pub visibility: Visibility,
    /// Caption, also the alt text.
    pub caption: Option<String>,
    /// What the upload was (`jpeg`, `png`, `webp`, `heic`).
    pub source_type: String,
    /// Key of the web-sized JPEG.
    pub web_key: String,
    /// Size of the web copy.
    pub web_size: (u32, u32),
    /// Key of the thumbnail JPEG.
    pub thumb_key: String,
    /// Size of the thumbnail.
    pub thumb_size: (u32, u32),
    /// The small thumbnail: its key and size; `None` for photos stored before it existed.
    pub small: Option<(String, (u32, u32))>,
    /// Bytes uploaded.
    pub bytes: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A photo about to be recorded (its renditions are already stored).
#[derive(Debug, Clone)]
pub struct NewPhoto {
    /// The order.
    pub order_id: i64,
    /// Customer-visible or internal.
    pub visibility: Visibility,
    /// Caption.
    pub caption: Option<String>,
    /// What the upload was.
    pub source_type: String,
    /// Key of the web copy.
    pub web_key: String,
    /// Size of the web copy.
    pub web_size: (u32, u32),
    /// Key of the thumbnail.
    pub thumb_key: String,
    /// Size of the thumbnail.
    pub thumb_size: (u32, u32),
    /// Key of the small thumbnail.
    pub small_key: String,
    /// Size of the small thumbnail.
    pub small_size: (u32, u32),
    /// Bytes uploaded.
    pub bytes: i64,
    /// Who uploaded it.
    pub uploaded_by: String,
}

#[derive(FromRow)]
struct Row {
    id: i64,
    order_id: i64,
    visibility: String,
    caption: Option<String>,
    source_type: String,
    web_key: String,
    web_width: i64,
    web_height: i64,
    thumb_key: String,
    thumb_width: i64,
    thumb_height: i64,
    small_key: Option<String>,
    small_width: Option<i64>,
    small_height: Option<i64>,
    bytes: i64,
    uploaded_by: String,
    created_at: i64,
}

fn dimension(value: i64) -> Result<u32, sqlx::Error> {
    u32::try_from(value).map_err(|e| corrupt("photo size", e))
}

impl TryFrom<Row> for Photo {
    type Error = sqlx::Error;

    fn try_from(r: Row) -> Result<Self, Self::Error> {
        Ok(Photo {
            id: r.id,
            order_id: r.order_id,
            visibility: Visibility::parse(&r.visibility).map_err(|e| corrupt("photo visibility", e))?,
            caption: r.caption,
            source_type: r.source_type,
            web_key: r.web_key,
            web_size: (dimension(r.web_width)?, dimension(r.web_height)?),
            thumb_key: r.thumb_key,
            thumb_size: (dimension(r.thumb_width)?, dimension(r.thumb_height)?),
            small: match (r.small_key, r.small_width, r.small_height) {
                (Some(key), Some(w), Some(h)) => Some((key, (dimension(w)?, dimension(h)?))),
                _ => None,
            },
            bytes: r.bytes,
            uploaded_by: r.uploaded_by,
            created_at: from_ms(r.created_at),
        })
    }
}

const COLUMNS: &str = "id, order_id, visibility, caption, source_type, web_key, web_width, web_height, \
    thumb_key, thumb_width, thumb_height, small_key, small_width, small_height, bytes, uploaded_by, created_at";

/// Records photos in one transaction, returning their ids in order.
pub async fn insert(db: &Db, photos: &[NewPhoto], at_ms: i64) -> Result<Vec<i64>, sqlx::Error> {
    const SQL: &str = "INSERT INTO photos (order_id, visibility, caption, source_type, web_key, web_width, \
        web_height, thumb_key, thumb_width, thumb_height, small_key, small_width, small_height, bytes, \
        uploaded_by, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id";
    let mut tx = db.begin().await?;
    let mut ids = Vec::with_capacity(photos.len());
    for p in photos {
        let id: i64 = on_tx!(&mut tx, |conn| {
            sqlx::query_scalar(SQL)
                .bind(p.order_id)
                .bind(p.visibility.as_str())
                .bind(p.caption.as_deref())
                .bind(p.source_type.as_str())
                .bind(p.web_key.as_str())
                .bind(i64::from(p.web_size.0))
                .bind(i64::from(p.web_size.1))
                .bind(p.thumb_key.as_str())
                .bind(i64::from(p.thumb_size.0))
                .bind(i64::from(p.thumb_size.1))
                .bind(p.small_key.as_str())
                .bind(i64::from(p.small_size.0))
                .bind(i64::from(p.small_size.1))
                .bind(p.bytes)
                .bind(p.uploaded_by.as_str())
                .bind(at_ms)
                .fetch_one(conn)
                .await
        })?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(ids)
}

/// One photo by id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<Photo>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM photos WHERE id = $1");
    let row: Option<Row> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await)?;
    row.map(Photo::try_from).transpose()
}

/// All photos of an order, oldest first.
pub async fn for_order(db: &Db, order_id: i64) -> Result<Vec<Photo>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM photos WHERE order_id = $1 ORDER BY id");
    let rows: Vec<Row> =
        on_read!(db, |conn| sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(order_id).fetch_all(conn).await)?;
    rows.into_iter().map(Photo::try_from).collect()
}
