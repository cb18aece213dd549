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
";

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
}
