//! The server's own log: one JSON object a line on stderr (`level`,
//! `msg`, `ts` in RFC 3339, then the fields), for journald, a container
//! runtime or any log shipper to pick up.

use std::io::Write;

fn line(level: &str, msg: &str, fields: &[(&str, &str)]) {
    let mut o = serde_json::Map::new();
    o.insert(
        "ts".into(),
        humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .into(),
    );
    o.insert("level".into(), level.into());
    o.insert("msg".into(), msg.into());
    for (k, v) in fields {
        o.insert((*k).into(), (*v).into());
    }
    let mut text = serde_json::Value::Object(o).to_string();
    text.push('\n');
    // A closed stderr must not stop the server.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Something an operator may want to know.
pub fn info(msg: &str, fields: &[(&str, &str)]) {
    line("info", msg, fields);
}

/// Something that failed.
pub fn error(msg: &str, fields: &[(&str, &str)]) {
    line("error", msg, fields);
}
