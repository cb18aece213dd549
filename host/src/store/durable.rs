//! Durable state in SQLite: what must survive a restart.
//!
//! Alert state (so a restart neither resets a pending timer nor forgets a
//! firing alert nor re-sends what was sent) and checks' learned state (so an
//! EWMA or a seasonal profile is not relearned). Series samples are not kept
//! here: they are cheap to scrape again and expensive to write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// The state database, `vigil.db` in the data directory.
pub struct Durable {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rule_alerts (
    rule TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS check_state (
    rule TEXT NOT NULL,
    series INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (rule, series)
);
CREATE TABLE IF NOT EXISTS notify_alerts (
    fingerprint INTEGER PRIMARY KEY,
    alert TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_log (
    group_key TEXT PRIMARY KEY,
    entry TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    receiver TEXT NOT NULL,
    job TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    silence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outcomes (
    fingerprint TEXT PRIMARY KEY,
    outcomes TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS acks (
    fingerprint TEXT PRIMARY KEY,
    ack TEXT NOT NULL
);
";

/// A notification waiting for delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub receiver: String,
    /// The serialized job (notification and what to log once sent).
    pub job: String,
    pub created_ms: i64,
}

impl Durable {
    pub fn open(data_dir: &Path) -> Result<Self, DurableError> {
        std::fs::create_dir_all(data_dir).map_err(|source| DurableError::CreateDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join("vigil.db");
        let err = |source| DurableError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Durable {
            path,
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, source: rusqlite::Error) -> DurableError {
        DurableError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// Saves one rule's alert state (serialized by the alert module).
    pub fn save_rule_alerts(
        &self,
        rule: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<(), DurableError> {
        self.conn()
            .execute(
                "INSERT INTO rule_alerts (rule, state, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(rule) DO UPDATE SET state = excluded.state, updated_ms = excluded.updated_ms",
                params![rule, state, now_ms],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    pub fn load_rule_alerts(&self, rule: &str) -> Result<Option<String>, DurableError> {
        self.conn()
            .query_row(
                "SELECT state FROM rule_alerts WHERE rule = ?1",
                params![rule],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Replaces one rule's check state: series fingerprint -> bytes.
    pub fn save_check_state<'a>(
        &self,
        rule: &str,
        entries: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Result<(), DurableError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM check_state WHERE rule = ?1", params![rule])
            .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx
                .prepare_cached("INSERT INTO check_state (rule, series, data) VALUES (?1, ?2, ?3)")
                .map_err(|e| self.err(e))?;
            for (series, data) in entries {
                if data.is_empty() {
                    continue;
                }
                // SQLite integers are signed; the fingerprint's bits are kept.
                stmt.execute(params![rule, series as i64, data])
                    .map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn load_check_state(&self, rule: &str) -> Result<HashMap<u64, Vec<u8>>, DurableError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT series, data FROM check_state WHERE rule = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![rule], |row| {
                Ok((row.get::<_, i64>(0)? as u64, row.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = HashMap::new();
        for row in rows {
            let (k, v) = row.map_err(|e| self.err(e))?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

/// The notification pipeline's state: the alerts it holds, what it sent
/// (the notification log), what it must still send (the outbox), silences
/// and acknowledgements. Values are JSON written by the `notify` module.
impl Durable {
    /// Saves alerts the pipeline received (fingerprint -> JSON), and forgets
    /// `remove`, in one transaction.
    pub fn save_notify_alerts<'a>(
        &self,
        upsert: impl IntoIterator<Item = (u64, &'a str)>,
        remove: impl IntoIterator<Item = u64>,
    ) -> Result<(), DurableError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT INTO notify_alerts (fingerprint, alert) VALUES (?1, ?2)
                     ON CONFLICT(fingerprint) DO UPDATE SET alert = excluded.alert",
                )
                .map_err(|e| self.err(e))?;
            for (fp, json) in upsert {
                put.execute(params![fp as i64, json])
                    .map_err(|e| self.err(e))?;
            }
            let mut del = tx
                .prepare_cached("DELETE FROM notify_alerts WHERE fingerprint = ?1")
                .map_err(|e| self.err(e))?;
            for fp in remove {
                del.execute(params![fp as i64]).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn load_notify_alerts(&self) -> Result<Vec<(u64, String)>, DurableError> {
        self.rows("SELECT fingerprint, alert FROM notify_alerts", |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get(1)?))
        })
    }

    /// Queues a notification; returns its outbox id.
    pub fn enqueue(&self, receiver: &str, job: &str, now_ms: i64) -> Result<i64, DurableError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO outbox (receiver, job, created_ms) VALUES (?1, ?2, ?3)",
            params![receiver, job, now_ms],
        )
        .map_err(|e| self.err(e))?;
        Ok(conn.last_insert_rowid())
    }

    /// Removes a notification from the outbox and, when it was delivered,
    /// records it in the notification log, atomically: after a crash it is
    /// either still queued or logged as sent, never both nor neither.
    pub fn complete(&self, id: i64, logged: Option<(&str, &str, i64)>) -> Result<(), DurableError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM outbox WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        if let Some((group_key, entry, at_ms)) = logged {
            tx.execute(
                "INSERT INTO notify_log (group_key, entry, at_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(group_key) DO UPDATE SET entry = excluded.entry, at_ms = excluded.at_ms",
                params![group_key, entry, at_ms],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    pub fn load_outbox(&self) -> Result<Vec<OutboxRow>, DurableError> {
        self.rows(
            "SELECT id, receiver, job, created_ms FROM outbox ORDER BY id",
            |row| {
                Ok(OutboxRow {
                    id: row.get(0)?,
                    receiver: row.get(1)?,
                    job: row.get(2)?,
                    created_ms: row.get(3)?,
                })
            },
        )
    }

    /// The notification log: group key -> entry JSON.
    pub fn load_notify_log(&self) -> Result<Vec<(String, String)>, DurableError> {
        self.rows("SELECT group_key, entry FROM notify_log", |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
    }

    /// Forgets log entries older than `before_ms`, like Alertmanager's
    /// notification log retention.
    pub fn gc_notify_log(&self, before_ms: i64) -> Result<usize, DurableError> {
        self.conn()
            .execute(
                "DELETE FROM notify_log WHERE at_ms < ?1",
                params![before_ms],
            )
            .map_err(|e| self.err(e))
    }

    /// Saves (or with `None`, deletes) one record of a small keyed table:
    /// `silences` (by id) or `acks` (by fingerprint, as text).
    pub fn put_record(
        &self,
        table: Record,
        key: &str,
        value: Option<&str>,
    ) -> Result<(), DurableError> {
        let (upsert, delete) = match table {
            Record::Silence => (
                "INSERT INTO silences (id, silence) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET silence = excluded.silence",
                "DELETE FROM silences WHERE id = ?1",
            ),
            Record::Outcome => (
                "INSERT INTO outcomes (fingerprint, outcomes) VALUES (?1, ?2)
                 ON CONFLICT(fingerprint) DO UPDATE SET outcomes = excluded.outcomes",
                "DELETE FROM outcomes WHERE fingerprint = ?1",
            ),
            Record::Ack => (
                "INSERT INTO acks (fingerprint, ack) VALUES (?1, ?2)
                 ON CONFLICT(fingerprint) DO UPDATE SET ack = excluded.ack",
                "DELETE FROM acks WHERE fingerprint = ?1",
            ),
        };
        let conn = self.conn();
        match value {
            Some(v) => conn.execute(upsert, params![key, v]),
            None => conn.execute(delete, params![key]),
        }
        .map(|_| ())
        .map_err(|e| self.err(e))
    }

    /// Every record of a keyed table, as (key, value).
    pub fn load_records(&self, table: Record) -> Result<Vec<(String, String)>, DurableError> {
        let sql = match table {
            Record::Silence => "SELECT id, silence FROM silences",
            Record::Ack => "SELECT fingerprint, ack FROM acks",
            Record::Outcome => "SELECT fingerprint, outcomes FROM outcomes",
        };
        self.rows(sql, |row| Ok((row.get(0)?, row.get(1)?)))
    }

    fn rows<T>(
        &self,
        sql: &str,
        f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, DurableError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], f).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<T>, _>>().map_err(|e| self.err(e))
    }
}

/// The small keyed tables of [`Durable::put_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    Silence,
    Ack,
    /// Delivery outcomes per alert fingerprint.
    Outcome,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("vigil-durable-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = Durable::open(&dir).unwrap();
            db.save_rule_alerts("r", "{\"a\":1}", 5).unwrap();
            db.save_check_state("r", [(u64::MAX, &b"xyz"[..]), (1, &b""[..])])
                .unwrap();
        }
        let db = Durable::open(&dir).unwrap();
        assert_eq!(
            db.load_rule_alerts("r").unwrap().as_deref(),
            Some("{\"a\":1}")
        );
        let st = db.load_check_state("r").unwrap();
        assert_eq!(st.get(&u64::MAX).map(Vec::as_slice), Some(&b"xyz"[..]));
        assert_eq!(st.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_outbox_and_log_change_together() {
        let dir = std::env::temp_dir().join(format!("vigil-outbox-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let db = Durable::open(&dir).unwrap();
            let a = db.enqueue("hook", "{\"n\":1}", 10).unwrap();
            let b = db.enqueue("hook", "{\"n\":2}", 11).unwrap();
            db.complete(a, Some(("g", "{\"e\":1}", 12))).unwrap();
            assert_eq!(db.load_outbox().unwrap()[0].id, b);
            db.save_notify_alerts([(u64::MAX, "x"), (7, "y")], [7])
                .unwrap();
            db.put_record(Record::Ack, &u64::MAX.to_string(), Some("a"))
                .unwrap();
            db.put_record(Record::Silence, "s1", Some("{}")).unwrap();
            db.put_record(Record::Silence, "s1", None).unwrap();
        }
        let db = Durable::open(&dir).unwrap();
        let outbox = db.load_outbox().unwrap();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].job, "{\"n\":2}");
        assert_eq!(
            db.load_notify_log().unwrap(),
            vec![("g".to_string(), "{\"e\":1}".to_string())]
        );
        assert_eq!(
            db.load_notify_alerts().unwrap(),
            vec![(u64::MAX, "x".into())]
        );
        assert_eq!(db.gc_notify_log(13).unwrap(), 1);
        assert_eq!(
            db.load_records(Record::Ack).unwrap(),
            vec![(u64::MAX.to_string(), "a".into())]
        );
        assert!(db.load_records(Record::Silence).unwrap().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
