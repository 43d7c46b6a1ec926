//! OpenTelemetry logs over OTLP/HTTP (`POST /v1/logs`, protobuf or JSON):
//! each log record becomes one wormlog record, a JSON object holding the
//! record's fields with its resource's and scope's attributes, appended
//! to the config's `[otlp]` log and answered once durable. The messages
//! are declared here (opentelemetry-proto's logs.proto, common.proto and
//! resource.proto, v1; only the fields a log export carries).

use crate::app::{ApiError, Shared};
use crate::config::Scope;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use prost::Message;
use serde_json::{json, Map, Value};

/// ExportLogsServiceRequest.
#[derive(Clone, PartialEq, Message)]
pub struct ExportLogsServiceRequest {
    /// One per resource.
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// ResourceLogs.
#[derive(Clone, PartialEq, Message)]
pub struct ResourceLogs {
    /// The emitting resource.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// Its logs, by instrumentation scope.
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// Resource.
#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    /// Resource attributes (service.name, host.name, ...).
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// ScopeLogs.
#[derive(Clone, PartialEq, Message)]
pub struct ScopeLogs {
    /// The instrumentation scope.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// The records.
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

/// InstrumentationScope.
#[derive(Clone, PartialEq, Message)]
pub struct InstrumentationScope {
    /// Its name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Its version.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Its attributes.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
}

/// LogRecord.
#[derive(Clone, PartialEq, Message)]
pub struct LogRecord {
    /// When the event happened.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// When the SDK saw it.
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    /// SeverityNumber (1 to 24).
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    /// The severity as text.
    #[prost(string, tag = "3")]
    pub severity_text: String,
    /// The body.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    /// The record's attributes.
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    /// Trace flags.
    #[prost(fixed32, tag = "8")]
    pub flags: u32,
    /// Trace id (16 bytes).
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    /// Span id (8 bytes).
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
    /// The event's name.
    #[prost(string, tag = "12")]
    pub event_name: String,
}

/// KeyValue.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    /// The key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// AnyValue.
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    /// Which value.
    #[prost(oneof = "Any", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Any>,
}

/// AnyValue's oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Any {
    /// A string.
    #[prost(string, tag = "1")]
    Str(String),
    /// A boolean.
    #[prost(bool, tag = "2")]
    Bool(bool),
    /// An integer.
    #[prost(int64, tag = "3")]
    Int(i64),
    /// A double.
    #[prost(double, tag = "4")]
    Double(f64),
    /// An array.
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    /// A map.
    #[prost(message, tag = "6")]
    Kvlist(KeyValueList),
    /// Bytes.
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

/// ArrayValue.
#[derive(Clone, PartialEq, Message)]
pub struct ArrayValue {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// KeyValueList.
#[derive(Clone, PartialEq, Message)]
pub struct KeyValueList {
    /// The pairs.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// An AnyValue as JSON: strings, booleans and numbers as themselves,
/// arrays and maps as JSON's, bytes as `{"bytes": BASE64}`.
fn any_json(v: Option<&AnyValue>) -> Value {
    match v.and_then(|v| v.value.as_ref()) {
        None => Value::Null,
        Some(Any::Str(s)) => s.clone().into(),
        Some(Any::Bool(b)) => (*b).into(),
        Some(Any::Int(i)) => (*i).into(),
        Some(Any::Double(d)) => {
            serde_json::Number::from_f64(*d).map_or_else(|| d.to_string().into(), Value::Number)
        }
        Some(Any::Array(a)) => Value::Array(a.values.iter().map(|v| any_json(Some(v))).collect()),
        Some(Any::Kvlist(l)) => attrs_json(&l.values),
        Some(Any::Bytes(b)) => json!({ "bytes": B64.encode(b) }),
    }
}

fn attrs_json(kvs: &[KeyValue]) -> Value {
    let mut m = Map::new();
    for kv in kvs {
        m.insert(kv.key.clone(), any_json(kv.value.as_ref()));
    }
    Value::Object(m)
}

use wormlog::format::hex;

/// What the record schema cannot hold faithfully, refused rather than
/// altered: a severity past 24, ids of the wrong length, and a key given
/// twice in one attribute list (OpenTelemetry requires them unique; as an
/// object, one of the two would vanish).
pub fn check(req: &ExportLogsServiceRequest) -> Result<(), String> {
    for rl in &req.resource_logs {
        if let Some(r) = &rl.resource {
            unique(&r.attributes, "resource")?;
        }
        for sl in &rl.scope_logs {
            if let Some(sc) = &sl.scope {
                unique(&sc.attributes, "scope")?;
            }
            for lr in &sl.log_records {
                if !(0..=24).contains(&lr.severity_number) {
                    return Err(format!("severity_number {}: 0 to 24", lr.severity_number));
                }
                if ![0, 16].contains(&lr.trace_id.len()) || ![0, 8].contains(&lr.span_id.len()) {
                    return Err("trace_id is 16 bytes and span_id 8, or both absent".into());
                }
                unique(&lr.attributes, "log record")?;
                if let Some(b) = &lr.body {
                    unique_in(b)?;
                }
            }
        }
    }
    Ok(())
}

fn unique(kvs: &[KeyValue], what: &str) -> Result<(), String> {
    for (i, kv) in kvs.iter().enumerate() {
        if kvs[..i].iter().any(|o| o.key == kv.key) {
            return Err(format!("{what} attribute {:?} given twice", kv.key));
        }
        if let Some(v) = &kv.value {
            unique_in(v)?;
        }
    }
    Ok(())
}

fn unique_in(v: &AnyValue) -> Result<(), String> {
    match &v.value {
        Some(Any::Double(d)) if !d.is_finite() => Err(format!(
            "double {d}: JSON has no such number (it would read as a string)"
        )),
        Some(Any::Kvlist(l)) => unique(&l.values, "map"),
        Some(Any::Array(a)) => a.values.iter().try_for_each(unique_in),
        _ => Ok(()),
    }
}

/// The wormlog records of a request, one per log record, in order.
pub fn records(req: &ExportLogsServiceRequest) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let resource = attrs_json(rl.resource.as_ref().map_or(&[][..], |r| &r.attributes));
        for sl in &rl.scope_logs {
            let scope = sl.scope.as_ref().map_or(Value::Null, |s| {
                json!({ "name": s.name, "version": s.version, "attributes": attrs_json(&s.attributes) })
            });
            for lr in &sl.log_records {
                let mut v = json!({
                    "time_unix_nano": lr.time_unix_nano.to_string(),
                    "observed_time_unix_nano": lr.observed_time_unix_nano.to_string(),
                    "severity_number": lr.severity_number,
                    "severity_text": lr.severity_text,
                    "body": any_json(lr.body.as_ref()),
                    "attributes": attrs_json(&lr.attributes),
                    "resource": resource,
                    "scope": scope,
                });
                if !lr.event_name.is_empty() {
                    v["event_name"] = lr.event_name.clone().into();
                }
                if !lr.trace_id.is_empty() {
                    v["trace_id"] = hex(&lr.trace_id).into();
                    v["span_id"] = hex(&lr.span_id).into();
                }
                if lr.flags != 0 {
                    v["flags"] = lr.flags.into();
                }
                out.push(v.to_string().into_bytes());
            }
        }
    }
    out
}

/// OTLP/JSON (lowerCamelCase keys, 64-bit integers as strings, ids as
/// hex, bytes as base64) into the same messages.
pub mod from_json {
    use super::*;

    /// `key` (lowerCamelCase) or its proto field name (snake_case): the
    /// protobuf JSON mapping lets a sender use either.
    fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
        v.get(key).or_else(|| v.get(snake(key)))
    }

    fn snake(key: &str) -> String {
        let mut out = String::with_capacity(key.len() + 4);
        for c in key.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// An object that gives a field in both spellings is ambiguous, as a
    /// key given twice is: refused.
    fn no_twins(v: &Value) -> Result<(), String> {
        match v {
            Value::Object(o) => {
                for k in o.keys() {
                    let s = snake(k);
                    if s != *k && o.contains_key(&s) {
                        return Err(format!("both {k} and {s} given"));
                    }
                }
                o.values().try_for_each(no_twins)
            }
            Value::Array(a) => a.iter().try_for_each(no_twins),
            _ => Ok(()),
        }
    }

    fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
        get(v, key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn text(v: &Value, key: &str) -> String {
        get(v, key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    }

    fn uint(v: &Value, key: &str) -> Result<u64, String> {
        match get(v, key) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| format!("{key}: {s:?} is not a number")),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("{key}: {n} is not an unsigned integer")),
            Some(other) => Err(format!("{key}: {other} is not a number")),
        }
    }

    fn unhex(s: &str, key: &str) -> Result<Vec<u8>, String> {
        if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{key}: not hex"));
        }
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
            .collect()
    }

    fn any(v: &Value) -> Result<Option<AnyValue>, String> {
        let o = match v {
            Value::Null => return Ok(None),
            Value::Object(o) => o,
            other => return Err(format!("{other} is not an AnyValue object")),
        };
        if o.is_empty() {
            return Ok(None);
        }
        let fields = [
            "stringValue",
            "boolValue",
            "intValue",
            "doubleValue",
            "arrayValue",
            "kvlistValue",
            "bytesValue",
        ];
        if fields.iter().filter(|f| get(v, f).is_some()).count() > 1 {
            return Err(format!("{v}: an AnyValue holds one value"));
        }
        let o = |f: &str| get(v, f);
        let value = if let Some(s) = o("stringValue") {
            Any::Str(s.as_str().unwrap_or("").to_string())
        } else if let Some(b) = o("boolValue") {
            Any::Bool(b.as_bool().unwrap_or(false))
        } else if let Some(i) = o("intValue") {
            let n = match i {
                Value::String(s) => s.parse().map_err(|_| format!("intValue {s:?}"))?,
                Value::Number(n) => n.as_i64().ok_or_else(|| format!("intValue {n}"))?,
                _ => return Err("intValue: not a number".into()),
            };
            Any::Int(n)
        } else if let Some(d) = o("doubleValue") {
            // Non-finite doubles ("NaN", "Infinity" in the JSON mapping)
            // have no JSON number: check() refuses them in either encoding.
            Any::Double(match d.as_str() {
                Some("NaN") => f64::NAN,
                Some("Infinity") => f64::INFINITY,
                Some("-Infinity") => f64::NEG_INFINITY,
                _ => d.as_f64().ok_or("doubleValue: not a number")?,
            })
        } else if let Some(a) = o("arrayValue") {
            let values = arr(a, "values")
                .iter()
                .map(any)
                .collect::<Result<Vec<_>, _>>()?;
            Any::Array(ArrayValue {
                values: values.into_iter().map(|v| v.unwrap_or_default()).collect(),
            })
        } else if let Some(l) = o("kvlistValue") {
            Any::Kvlist(KeyValueList {
                values: kvs(arr(l, "values"))?,
            })
        } else if let Some(b) = o("bytesValue") {
            let s = b.as_str().unwrap_or("");
            Any::Bytes(B64.decode(s).map_err(|e| format!("bytesValue: {e}"))?)
        } else {
            return Err(format!("no known AnyValue field in {v}"));
        };
        Ok(Some(AnyValue { value: Some(value) }))
    }

    fn kvs(list: &[Value]) -> Result<Vec<KeyValue>, String> {
        list.iter()
            .map(|kv| {
                Ok(KeyValue {
                    key: text(kv, "key"),
                    value: kv.get("value").map(any).transpose()?.flatten(),
                })
            })
            .collect()
    }

    /// SeverityNumber: 0 (unspecified) to 24.
    fn severity(lr: &Value) -> Result<i32, String> {
        match uint(lr, "severityNumber")? {
            n @ 0..=24 => Ok(n as i32),
            n => Err(format!("severityNumber {n}: 0 to 24")),
        }
    }

    fn record(lr: &Value) -> Result<LogRecord, String> {
        Ok(LogRecord {
            time_unix_nano: uint(lr, "timeUnixNano")?,
            observed_time_unix_nano: uint(lr, "observedTimeUnixNano")?,
            severity_number: severity(lr)?,
            severity_text: text(lr, "severityText"),
            body: lr.get("body").map(any).transpose()?.flatten(),
            attributes: kvs(arr(lr, "attributes"))?,
            flags: u32::try_from(uint(lr, "flags")?)
                .map_err(|_| "flags: past 32 bits".to_string())?,
            trace_id: unhex(&text(lr, "traceId"), "traceId")?,
            span_id: unhex(&text(lr, "spanId"), "spanId")?,
            event_name: text(lr, "eventName"),
        })
    }

    /// The request a JSON body holds.
    pub fn request(v: &Value) -> Result<ExportLogsServiceRequest, String> {
        if !v.is_object() {
            return Err(format!("{v}: an ExportLogsServiceRequest is a JSON object"));
        }
        no_twins(v)?;
        let mut req = ExportLogsServiceRequest::default();
        for rl in arr(v, "resourceLogs") {
            let resource = rl.get("resource").map(|r| -> Result<Resource, String> {
                Ok(Resource {
                    attributes: kvs(arr(r, "attributes"))?,
                })
            });
            let mut out = ResourceLogs {
                resource: resource.transpose()?,
                scope_logs: Vec::new(),
            };
            for sl in arr(rl, "scopeLogs") {
                let scope = match sl.get("scope") {
                    Some(s) => Some(InstrumentationScope {
                        name: text(s, "name"),
                        version: text(s, "version"),
                        attributes: kvs(arr(s, "attributes"))?,
                    }),
                    None => None,
                };
                let log_records = arr(sl, "logRecords")
                    .iter()
                    .map(record)
                    .collect::<Result<_, _>>()?;
                out.scope_logs.push(ScopeLogs { scope, log_records });
            }
            req.resource_logs.push(out);
        }
        Ok(req)
    }
}

/// `POST /v1/logs`: appends each log record to the `[otlp]` log; answers
/// an empty ExportLogsServiceResponse (in the request's encoding) once
/// every record is durable.
pub async fn export(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Some(name) = app.cfg.otlp_log.clone() else {
        app.who(&headers)?;
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_otlp_log",
            "this server has no [otlp] log configured",
        ));
    };
    let (_, served) = app.allow_named(&headers, Scope::Append, &name, false)?;
    let body = app.read_body(body).await?;
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json_body = kind.starts_with("application/json");
    let req = if json_body {
        // Strict first: a key given twice in the request is ambiguous.
        wormlog::json::check_strict(&body)
            .map_err(|e| app.count(ApiError::bad_request(format!("OTLP/JSON: {e}"))))?;
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| app.count(ApiError::bad_request(format!("OTLP/JSON: {e}"))))?;
        from_json::request(&v)
            .map_err(|e| app.count(ApiError::bad_request(format!("OTLP/JSON: {e}"))))?
    } else if kind.starts_with("application/x-protobuf") || kind.is_empty() {
        ExportLogsServiceRequest::decode(body.as_ref())
            .map_err(|e| app.count(ApiError::bad_request(format!("OTLP protobuf: {e}"))))?
    } else {
        return Err(app.count(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type",
            format!("{kind}: send application/x-protobuf or application/json"),
        )));
    };
    check(&req).map_err(|e| app.count(ApiError::bad_request(format!("OTLP: {e}"))))?;
    let recs = records(&req);
    if !recs.is_empty() {
        crate::records::append_to(&app, &served, recs).await?;
    }
    Ok(if json_body {
        (
            [(header::CONTENT_TYPE, "application/json")],
            Bytes::from_static(b"{}"),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Bytes::new(),
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_and_json_encodings_give_the_same_records() {
        let text = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"billing"}}]},
          "scopeLogs":[{"scope":{"name":"audit","version":"1"},"logRecords":[{"timeUnixNano":"1700000000000000001",
          "severityNumber":9,"severityText":"INFO","body":{"stringValue":"login"},
          "attributes":[{"key":"user","value":{"stringValue":"alice"}},{"key":"n","value":{"intValue":"9007199254740993"}},
          {"key":"tags","value":{"arrayValue":{"values":[{"boolValue":true}]}}}],
          "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708"}]}]}]}"#;
        let req = from_json::request(&serde_json::from_str(text).unwrap()).unwrap();
        let again = ExportLogsServiceRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(records(&req), records(&again));
        let rec: Value = serde_json::from_slice(&records(&req)[0]).unwrap();
        assert_eq!(rec["resource"]["service.name"], "billing");
        assert_eq!(rec["attributes"]["user"], "alice");
        assert_eq!(rec["attributes"]["n"].to_string(), "9007199254740993");
        assert_eq!(rec["time_unix_nano"], "1700000000000000001");
        assert_eq!(rec["trace_id"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(rec["body"], "login");
    }

    #[test]
    fn json_that_is_not_otlp_is_refused_not_dropped() {
        let wrap =
            |lr: &str| format!(r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{lr}]}}]}}]}}"#);
        for bad in [
            r#"{"body":5}"#,
            r#"{"severityNumber":99999999999}"#,
            r#"{"body":{"strange":1}}"#,
        ] {
            let v = serde_json::from_str(&wrap(bad)).unwrap();
            assert!(from_json::request(&v).is_err(), "{bad}");
        }
        let v = serde_json::from_str(&wrap(r#"{"severityNumber":24,"body":{}}"#)).unwrap();
        assert!(from_json::request(&v).is_ok());
        // Two values in one AnyValue, a field in both spellings: ambiguous.
        for bad in [
            r#"{"body":{"stringValue":"a","intValue":"1"}}"#,
            r#"{"traceId":"","trace_id":""}"#,
        ] {
            let v = serde_json::from_str(&wrap(bad)).unwrap();
            assert!(from_json::request(&v).is_err(), "{bad}");
        }
    }

    #[test]
    fn proto_field_names_are_read_as_the_camel_case_ones() {
        let wrap = |lr: &str| {
            format!(r#"{{"resource_logs":[{{"scope_logs":[{{"log_records":[{lr}]}}]}}]}}"#)
        };
        let v = serde_json::from_str(&wrap(
            r#"{"severity_number":3,"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708","body":{"double_value":1.5}}"#,
        ))
        .unwrap();
        let req = from_json::request(&v).unwrap();
        check(&req).unwrap();
        let rec: Value = serde_json::from_slice(&records(&req)[0]).unwrap();
        assert_eq!(rec["severity_number"], 3);
        assert_eq!(rec["trace_id"], "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(rec["body"], 1.5);
        // Non-finite doubles would read as strings: refused.
        let nan = serde_json::from_str(&wrap(r#"{"body":{"doubleValue":"NaN"}}"#)).unwrap();
        assert!(check(&from_json::request(&nan).unwrap()).is_err());
    }

    #[test]
    fn a_key_twice_in_attributes_or_a_severity_past_24_is_refused_in_either_encoding() {
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Any::Str(v.into())),
            }),
        };
        let req = |lr: LogRecord| ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![lr],
                }],
            }],
        };
        let twice = LogRecord {
            attributes: vec![kv("user", "mallory"), kv("user", "alice")],
            ..LogRecord::default()
        };
        assert!(check(&req(twice))
            .unwrap_err()
            .contains("\"user\" given twice"));
        let loud = LogRecord {
            severity_number: 99,
            ..LogRecord::default()
        };
        assert!(check(&req(loud)).is_err());
        let short = LogRecord {
            trace_id: vec![1, 2, 3],
            ..LogRecord::default()
        };
        assert!(check(&req(short)).is_err());
        assert!(check(&req(LogRecord::default())).is_ok());
    }

    #[test]
    fn nesting_past_the_decoders_limit_is_an_error_not_a_stack_overflow() {
        // 200 nested arrays: prost's recursion limit is 100.
        let mut v = AnyValue {
            value: Some(Any::Str("x".into())),
        };
        for _ in 0..200 {
            v = AnyValue {
                value: Some(Any::Array(ArrayValue { values: vec![v] })),
            };
        }
        let lr = LogRecord {
            body: Some(v),
            ..LogRecord::default()
        };
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: None,
                scope_logs: vec![ScopeLogs {
                    scope: None,
                    log_records: vec![lr],
                }],
            }],
        };
        let bytes = req.encode_to_vec();
        assert!(ExportLogsServiceRequest::decode(bytes.as_slice()).is_err());
    }
}
