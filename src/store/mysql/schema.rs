//! The MySQL store's table: created if missing, adapted when Flask-Session created it.

use mysql::PooledConn;
use mysql::prelude::Queryable;

/// Creates the table if missing, widens a Flask-created one, and adds the expiry index,
/// under a named lock so that processes starting together do not race.
pub(super) fn prepare(conn: &mut PooledConn, table: &str) -> std::result::Result<(), mysql::Error> {
    let lock = format!("sessionstore schema {table}");
    let locked: Option<i64> = conn.exec_first("SELECT GET_LOCK(?, 30)", (&lock,))?;
    if locked != Some(1) {
        return Err(mysql::Error::DriverError(mysql::DriverError::Timeout));
    }
    let result = create_or_adapt(conn, table);
    let released = conn.exec_drop("DO RELEASE_LOCK(?)", (&lock,));
    result.and(released)
}

fn create_or_adapt(conn: &mut PooledConn, table: &str) -> std::result::Result<(), mysql::Error> {
    conn.query_drop(format!(
        "CREATE TABLE IF NOT EXISTS `{table}` (\
             id INTEGER NOT NULL AUTO_INCREMENT, \
             session_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL, \
             data LONGBLOB, \
             expiry DATETIME(6), \
             PRIMARY KEY (id), \
             UNIQUE KEY session_id (session_id), \
             KEY expiry_idx (expiry)\
         ) DEFAULT CHARSET = utf8mb4"
    ))?;
    let columns: Vec<(String, String, Option<u64>)> = conn.exec(
        "SELECT COLUMN_NAME, DATA_TYPE, DATETIME_PRECISION FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
        (table,),
    )?;
    let mut changes = Vec::new();
    for (column, data_type, precision) in columns {
        match (column.as_str(), data_type.to_ascii_lowercase().as_str()) {
            ("data", "tinyblob" | "blob" | "mediumblob") => {
                changes.push("MODIFY data LONGBLOB");
            }
            ("expiry", "datetime") if precision.unwrap_or(0) < 6 => {
                changes.push("MODIFY expiry DATETIME(6)");
            }
            _ => {}
        }
    }
    let indexed: Option<i64> = conn.exec_first(
        "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         AND TABLE_NAME = ? AND COLUMN_NAME = 'expiry' AND SEQ_IN_INDEX = 1",
        (table,),
    )?;
    if indexed == Some(0) {
        changes.push("ADD INDEX expiry_idx (expiry)");
    }
    if !changes.is_empty() {
        log::info!(
            "mysql store: adapting table {table}: {}",
            changes.join(", ")
        );
        conn.query_drop(format!("ALTER TABLE `{table}` {}", changes.join(", ")))?;
    }
    Ok(())
}
