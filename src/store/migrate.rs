//! Applies `migrations/NNNN_name.sql` in order; the schema version is SQLite's `user_version`.
//! Landed migrations are never edited: a change is a new file. A migration that must seal or
//! hash what rows already hold (SQL cannot, it has no key) names a conversion, run after its
//! SQL in the same transaction.

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use super::{bucket, change_key, frames, seal_size, Result, StoreError};
use crate::crypto::Sealer;

struct Migration {
    /// The file's name: a unit test checks the list against the folder.
    #[cfg_attr(not(test), allow(dead_code))]
    name: &'static str,
    sql: &'static str,
    convert: Option<fn(&Connection, &Sealer) -> Result<()>>,
}

/// Every migration, in order. A unit test checks this list against the folder.
const MIGRATIONS: &[Migration] = &[
    Migration { name: "0001_init.sql", sql: include_str!("../../migrations/0001_init.sql"), convert: None },
    Migration { name: "0002_embeddings.sql", sql: include_str!("../../migrations/0002_embeddings.sql"), convert: None },
    Migration { name: "0003_frames.sql", sql: include_str!("../../migrations/0003_frames.sql"), convert: None },
    Migration { name: "0004_captions.sql", sql: include_str!("../../migrations/0004_captions.sql"), convert: None },
    Migration {
        name: "0005_sealed_sizes.sql",
        sql: include_str!("../../migrations/0005_sealed_sizes.sql"),
        convert: Some(seal_sizes),
    },
    Migration {
        name: "0006_drop_clear_sizes.sql",
        sql: include_str!("../../migrations/0006_drop_clear_sizes.sql"),
        convert: None,
    },
    Migration { name: "0007_skipped.sql", sql: include_str!("../../migrations/0007_skipped.sql"), convert: None },
];

/// Brings the schema up to date. Returns whether any migration ran.
pub fn run(conn: &Connection, sealer: &Sealer) -> Result<bool> {
    run_to(conn, sealer, MIGRATIONS.len())
}

/// Brings the schema up to version `target` (tests build old stores with it).
pub(super) fn run_to(conn: &Connection, sealer: &Sealer, target: usize) -> Result<bool> {
    let known = MIGRATIONS.len() as i64;
    let version = |c: &Connection| -> Result<i64> { Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?) };
    let current = version(conn)?;
    if current > known {
        return Err(StoreError::TooNew { found: current, known });
    }
    let mut ran = false;
    for (n, m) in MIGRATIONS.iter().enumerate().take(target).skip(current as usize) {
        // Immediate: another process opening the same old store waits, then finds it done.
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
        if version(&tx)? > n as i64 {
            continue;
        }
        tx.execute_batch(m.sql)?;
        if let Some(convert) = m.convert {
            convert(&tx, sealer)?;
        }
        tx.pragma_update(None, "user_version", n as i64 + 1)?;
        tx.commit()?;
        ran = true;
    }
    Ok(ran)
}

/// Version 5: each item's size and modified time become a keyed hash and its exact size is
/// sealed; each picture's dimensions are sealed; clear sizes are rounded up to their bucket.
fn seal_sizes(tx: &Connection, sealer: &Sealer) -> Result<()> {
    let items: Vec<(i64, i64, i64)> = {
        let mut stmt = tx.prepare("SELECT id, size, mtime FROM items")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut update = tx.prepare("UPDATE items SET change_key = ?2, sealed_size = ?3 WHERE id = ?1")?;
        for (id, size, mtime) in items {
            update.execute(params![id, &change_key(sealer, id, size, mtime)[..], seal_size(sealer, id, size)?])?;
        }
    }
    let contents: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare("SELECT id, bytes FROM contents")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    {
        let mut update = tx.prepare("UPDATE contents SET bytes = ?2 WHERE id = ?1")?;
        for (id, bytes) in contents {
            update.execute(params![id, bucket(bytes)])?;
        }
    }
    let pictures: Vec<(i64, u32, u32, i64)> = {
        let mut stmt = tx.prepare("SELECT item_id, width, height, bytes FROM frames")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let mut update = tx.prepare("UPDATE frames SET dims = ?2, bytes = ?3 WHERE item_id = ?1")?;
    for (id, width, height, bytes) in pictures {
        update.execute(params![id, frames::seal_dims(sealer, id, width, height)?, bucket(bytes)])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn sealer() -> Sealer {
        Sealer::new(&DataKey::generate().unwrap())
    }

    #[test]
    fn every_file_is_listed_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.name.to_string()).collect();
        assert_eq!(files, listed);
    }

    #[test]
    fn running_twice_is_a_no_op() {
        let conn = Connection::open_in_memory().unwrap();
        let s = sealer();
        assert!(run(&conn, &s).unwrap());
        assert!(!run(&conn, &s).unwrap());
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn newer_schema_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 999).unwrap();
        assert!(matches!(run(&conn, &sealer()), Err(StoreError::TooNew { .. })));
    }
}
