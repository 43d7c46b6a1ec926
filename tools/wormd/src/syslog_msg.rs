//! One syslog message into one JSON record: RFC 5424 (`<PRI>1 TIMESTAMP
//! HOST APP PROCID MSGID SD MSG`), else RFC 3164 (`<PRI>Mmm dd hh:mm:ss
//! HOST TAG[PID]: MSG`), else kept unparsed. The original bytes are always
//! kept (`original`: the text, or `original_base64` when not UTF-8), so a
//! parse that read a field wrongly never loses what was sent.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Map, Value};

/// The record for `msg`, received from `peer`.
pub fn to_record(msg: &[u8], peer: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(msg);
    let mut v = parse(&text).unwrap_or_else(|| json!({ "syslog": "unparsed", "message": text }));
    v["peer"] = peer.into();
    match std::str::from_utf8(msg) {
        Ok(s) => v["original"] = s.into(),
        Err(_) => v["original_base64"] = B64.encode(msg).into(),
    }
    v.to_string().into_bytes()
}

/// `<PRI>` and what follows; PRI is 0..=191.
fn pri(text: &str) -> Option<(u32, &str)> {
    let rest = text.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let p: u32 = rest[..end].parse().ok()?;
    (p <= 191).then_some((p, &rest[end + 1..]))
}

fn parse(text: &str) -> Option<Value> {
    // A sender's line ending inside an octet-counted frame (rsyslog's
    // RSYSLOG_SyslogProtocol23Format ends with LF) is not message text;
    // `original` keeps it.
    let text = text.trim_end_matches(['\n', '\r', '\0']);
    let (p, rest) = pri(text)?;
    let mut v = match rest.strip_prefix("1 ") {
        Some(r) => rfc5424(r)?,
        None => rfc3164(rest),
    };
    v["facility"] = (p / 8).into();
    v["severity"] = (p % 8).into();
    Some(v)
}

fn nil(field: &str) -> Value {
    if field == "-" {
        Value::Null
    } else {
        field.into()
    }
}

fn rfc5424(r: &str) -> Option<Value> {
    let mut parts = r.splitn(6, ' ');
    let ts = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let msgid = parts.next()?;
    let rest = parts.next().unwrap_or("-");
    let (sd, msg) = structured_data(rest)?;
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    Some(json!({
        "syslog": "rfc5424",
        "timestamp": nil(ts),
        "host": nil(host),
        "app": nil(app),
        "procid": nil(procid),
        "msgid": nil(msgid),
        "structured_data": sd,
        "message": msg,
    }))
}

/// `-` or `[id k="v" ...]...`, then the message after one space.
fn structured_data(s: &str) -> Option<(Value, &str)> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some((Value::Null, rest.strip_prefix(' ').unwrap_or(rest)));
    }
    let mut out = Map::new();
    let mut rest = s;
    while let Some(body) = rest.strip_prefix('[') {
        let (element, after) = sd_element(body)?;
        let (id, params) = element;
        // An SD-ID given twice keeps both elements, as an array (as a
        // parameter given twice keeps both values).
        match out.get_mut(&id) {
            Some(Value::Array(a)) if a.first().is_some_and(Value::is_object) => a.push(params),
            Some(old) => *old = Value::Array(vec![old.take(), params]),
            None => {
                out.insert(id, params);
            }
        }
        rest = after;
    }
    if out.is_empty() {
        return None;
    }
    Some((Value::Object(out), rest.strip_prefix(' ').unwrap_or(rest)))
}

/// One SD-ELEMENT after its `[`: its id and params (a name given twice
/// gets an array of its values), and what follows its `]`.
fn sd_element(s: &str) -> Option<((String, Value), &str)> {
    let id_end = s.find([' ', ']'])?;
    let id = s[..id_end].to_string();
    let mut params = Map::new();
    let mut rest = &s[id_end..];
    loop {
        if let Some(after) = rest.strip_prefix(']') {
            return Some(((id, Value::Object(params)), after));
        }
        rest = rest.strip_prefix(' ')?;
        let eq = rest.find('=')?;
        let name = rest[..eq].to_string();
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => {
                    let (_, n) = chars.next()?;
                    if !matches!(n, '"' | '\\' | ']') {
                        value.push('\\');
                    }
                    value.push(n);
                }
                '"' => break i,
                c => value.push(c),
            }
        };
        rest = &rest[end + 1..];
        match params.get_mut(&name) {
            Some(Value::Array(a)) => a.push(value.into()),
            Some(old) => *old = Value::Array(vec![old.take(), value.into()]),
            None => {
                params.insert(name, value.into());
            }
        }
    }
}

/// BSD syslog: a timestamp `Mmm dd hh:mm:ss` where present, a host, a tag
/// (`app[pid]:`), the message; what does not fit stays in `message`.
fn rfc3164(r: &str) -> Value {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (ts, rest) = match r.get(..15) {
        Some(t)
            if MONTHS.contains(&&t[..3]) && t.as_bytes()[3] == b' ' && t.as_bytes()[12] == b':' =>
        {
            (
                Value::from(t),
                r[15..].strip_prefix(' ').unwrap_or(&r[15..]),
            )
        }
        _ => (Value::Null, r),
    };
    let mut v = json!({ "syslog": "rfc3164", "timestamp": ts, "host": null, "app": null, "procid": null, "message": rest });
    let Some((host, after_host)) = rest.split_once(' ') else {
        return v;
    };
    // The tag: up to 32 alphanumerics (and -_./), then `[pid]`, then ':'.
    let tag_end = after_host
        .find(|c: char| !(c.is_alphanumeric() || "-_./".contains(c)))
        .unwrap_or(after_host.len());
    if tag_end == 0 || tag_end > 48 || ts.is_null() && host.contains(':') {
        return v;
    }
    let (app, mut rest) = after_host.split_at(tag_end);
    let mut procid = Value::Null;
    if let Some(p) = rest.strip_prefix('[') {
        if let Some((pid, after)) = p.split_once(']') {
            procid = pid.into();
            rest = after;
        }
    }
    let Some(msg) = rest.strip_prefix(':') else {
        return v;
    };
    v["host"] = host.into();
    v["app"] = app.into();
    v["procid"] = procid;
    v["message"] = msg.strip_prefix(' ').unwrap_or(msg).into();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(msg: &str) -> Value {
        serde_json::from_slice(&to_record(msg.as_bytes(), "127.0.0.1:1")).unwrap()
    }

    #[test]
    fn rfc5424_fields_and_structured_data_are_parsed() {
        let v = rec(
            r#"<165>1 2003-10-11T22:14:15.003Z host1 evntslog 42 ID47 [exampleSDID@32473 iut="3" eventSource="App\"x\]" iut="4"][b@1 k="v"] An application event"#,
        );
        assert_eq!(v["syslog"], "rfc5424");
        assert_eq!(
            (v["facility"].as_u64(), v["severity"].as_u64()),
            (Some(20), Some(5))
        );
        assert_eq!(v["host"], "host1");
        assert_eq!(v["app"], "evntslog");
        assert_eq!(v["procid"], "42");
        assert_eq!(v["msgid"], "ID47");
        let sd = &v["structured_data"]["exampleSDID@32473"];
        assert_eq!(sd["eventSource"], "App\"x]");
        assert_eq!(sd["iut"], json!(["3", "4"]));
        assert_eq!(v["structured_data"]["b@1"]["k"], "v");
        let twice = rec(r#"<13>1 - h a p m [a@1 x="1"][a@1 x="2"] m"#);
        assert_eq!(
            twice["structured_data"]["a@1"],
            json!([{"x": "1"}, {"x": "2"}])
        );
        assert_eq!(v["message"], "An application event");
        assert!(v["original"].as_str().unwrap().starts_with("<165>1 "));
    }

    #[test]
    fn a_trailing_line_ending_is_not_message_text_but_stays_in_the_original() {
        let v = rec("<13>1 - h app - - - text\r\n");
        assert_eq!(v["message"], "text");
        assert_eq!(v["original"], "<13>1 - h app - - - text\r\n");
    }

    #[test]
    fn rfc5424_nil_values_are_null() {
        let v = rec("<13>1 - - - - - -");
        assert!(v["timestamp"].is_null() && v["host"].is_null() && v["structured_data"].is_null());
        assert_eq!(v["message"], "");
    }

    #[test]
    fn rfc3164_tag_pid_and_message_are_parsed() {
        let v = rec(
            "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
        );
        assert_eq!(v["syslog"], "rfc3164");
        assert_eq!(v["timestamp"], "Oct 11 22:14:15");
        assert_eq!(v["host"], "mymachine");
        assert_eq!(v["app"], "su");
        assert_eq!(v["procid"], "230");
        assert_eq!(v["message"], "'su root' failed for lonvick on /dev/pts/8");
    }

    #[test]
    fn anything_else_is_kept_unparsed_with_its_bytes() {
        let v = rec("no priority here");
        assert_eq!(v["syslog"], "unparsed");
        assert_eq!(v["original"], "no priority here");
        let raw = to_record(&[b'<', b'1', b'>', 0xff, 0xfe], "p");
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            v["original_base64"],
            B64.encode([b'<', b'1', b'>', 0xff, 0xfe])
        );
        // A broken SD is not a 5424 message; it stays whole.
        assert_eq!(rec("<13>1 - h a p m [broken")["syslog"], "unparsed");
    }
}
