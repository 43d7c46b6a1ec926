//! Output: stdout through a buffer (a closed pipe ends the command quietly),
//! times as RFC 3339, payloads as text or base64, records as table rows or
//! JSON lines.

use crate::fail::Fail;
use base64::Engine as _;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wormlog::format::hex;
use wormlog::Record;

pub struct Out {
    w: BufWriter<Box<dyn Write>>,
    /// The pager the output goes through, if one was started.
    pager: Option<std::process::Child>,
}

impl Out {
    pub fn new() -> Out {
        Out {
            w: BufWriter::new(Box::new(io::stdout())),
            pager: None,
        }
    }

    /// Output through a pager when stdout is a terminal and `no_pager` is
    /// off, as journalctl does: `$WORMCTL_PAGER`, else `$PAGER`, else
    /// `less` (with `LESS=FRXK` unless LESS is set: quit when it fits one
    /// screen, keep colours and the screen, let Ctrl-C quit). A pager that
    /// cannot start leaves the output on stdout.
    pub fn paged(no_pager: bool) -> Out {
        use std::io::IsTerminal;
        if no_pager || !io::stdout().is_terminal() {
            return Out::new();
        }
        let pager = std::env::var("WORMCTL_PAGER")
            .or_else(|_| std::env::var("PAGER"))
            .unwrap_or_else(|_| "less".into());
        if pager.trim().is_empty() || pager.trim() == "cat" {
            return Out::new();
        }
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&pager)
            .stdin(std::process::Stdio::piped());
        if std::env::var_os("LESS").is_none() {
            cmd.env("LESS", "FRXK");
        }
        match cmd.spawn() {
            Ok(mut child) => match child.stdin.take() {
                Some(stdin) => Out {
                    w: BufWriter::new(Box::new(stdin)),
                    pager: Some(child),
                },
                None => Out::new(),
            },
            Err(_) => Out::new(),
        }
    }

    pub fn line(&mut self, s: impl AsRef<str>) -> Result<(), Fail> {
        let w = &mut self.w;
        w.write_all(s.as_ref().as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| Fail::io("stdout", e))
    }

    /// One record as a table row, written as it is formatted.
    pub fn table_row(&mut self, r: &Record, raw: bool) -> Result<(), Fail> {
        let w = &mut self.w;
        write_table_row(w, r, raw)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| Fail::io("stdout", e))
    }

    /// One record as a JSON line, written as it is formatted.
    pub fn record_json(&mut self, r: &Record, raw: bool) -> Result<(), Fail> {
        let w = &mut self.w;
        write_record_json(w, r, raw)
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| Fail::io("stdout", e))
    }

    /// One record as one pretty-printed JSON object (journalctl's
    /// `-o json-pretty`).
    pub fn record_json_pretty(&mut self, r: &Record, raw: bool) -> Result<(), Fail> {
        let mut line = Vec::new();
        write_record_json(&mut line, r, raw).map_err(|e| Fail::io("stdout", e))?;
        let v: serde_json::Value =
            serde_json::from_slice(&line).map_err(|e| Fail::io("stdout", io::Error::other(e)))?;
        let text = serde_json::to_string_pretty(&v).map_err(|e| Fail::io("stdout", e.into()))?;
        // Its own newlines are the layout; what is inside strings is
        // escaped line by line, as for one-line JSON.
        for line in text.lines() {
            self.line(json_text(line))?;
        }
        Ok(())
    }

    /// The payload alone, as the table shows it (journalctl's `-o cat`).
    pub fn payload_line(&mut self, r: &Record) -> Result<(), Fail> {
        let w = &mut self.w;
        write_payload_text(w, r.payload())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| Fail::io("stdout", e))
    }

    pub fn json(&mut self, v: &serde_json::Value) -> Result<(), Fail> {
        self.line(json_text(&v.to_string()))
    }

    pub fn flush(&mut self) -> Result<(), Fail> {
        self.w.flush().map_err(|e| Fail::io("stdout", e))
    }
}

impl Drop for Out {
    /// Flushes; with a pager, also ends its input and waits until the user
    /// quits it.
    fn drop(&mut self) {
        let _ = self.w.flush();
        if let Some(mut child) = self.pager.take() {
            drop(std::mem::replace(
                &mut self.w,
                BufWriter::new(Box::new(io::sink())),
            ));
            let _ = child.wait();
        }
    }
}

/// Bytes to stdout, whole (a closed pipe is not an error: see `Fail::io`).
pub fn write_stdout(bytes: &[u8]) -> Result<(), Fail> {
    let mut w = io::stdout().lock();
    w.write_all(bytes)
        .and_then(|()| w.flush())
        .map_err(|e| Fail::io("stdout", e))
}

/// ns since the Unix epoch as RFC 3339 UTC with nanoseconds.
pub fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// The same to the second, for tables.
pub fn rfc3339_seconds(ns: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

/// `d` in ns, saturating (u64 ns last until 2554).
fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Now, in ns since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, ns)
}

/// A point in time for --since/--until: RFC 3339 (`2026-11-22T10:00:00Z`),
/// ns since the Unix epoch, or a duration before now (`15m`, `7d`).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let tz = if INPUT_UTC.get().copied().unwrap_or(false) {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::system()
    };
    parse_time_at(s, now_ns(), &tz)
}

/// `--utc`: times given without a zone are UTC.
static INPUT_UTC: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Reads times given without a zone as UTC (`--utc`) or in the system's
/// zone; set once, before the arguments are parsed.
pub fn set_input_utc(yes: bool) {
    let _ = INPUT_UTC.set(yes);
}

/// `parse_time` with the clock and time zone given (for tests). Takes, as
/// journalctl does: `@SECONDS` since 1970 (or `NSns`; a bare number is
/// refused, as it could be either); a time of day (`06:40`, today); RFC 3339 with `Z` or an offset
/// (`2026-11-22T10:00:00+01:00`); a civil time or date in `tz`
/// (`2026-11-22 10:00`, `2026-11-22`); `now`, `today`, `yesterday`,
/// `tomorrow` (midnight in `tz`); a duration ago (`15m`, `-1h`, `2h ago`)
/// or ahead (`+30m`).
pub fn parse_time_at(s: &str, now: u64, tz: &jiff::tz::TimeZone) -> Result<u64, String> {
    let s = s.trim();
    // A bare number could be seconds (journalctl's @EPOCH without its @)
    // or ns (dump --json's time_ns): it must say which.
    if let Some(ns) = s.strip_suffix("ns") {
        if let Ok(ns) = ns.trim().parse::<u64>() {
            return Ok(ns);
        }
    }
    if let Some(secs) = s.strip_prefix('@') {
        return secs
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v < 1.8e10)
            .map(|v| (v * 1e9).round() as u64)
            .ok_or_else(|| format!("{s:?}: @ takes seconds since 1970 (@1700000000)"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return Err(format!(
            "{s:?}: a bare number could be seconds or ns since 1970: write @{s} for seconds \
             (as journalctl), or {s}ns for ns (as dump --json's time_ns)"
        ));
    }
    // A time of day alone (06:40, 06:40:30): today at that time.
    if let Ok(t) = s.parse::<jiff::civil::Time>() {
        if s.contains(':') && s.len() <= 15 {
            let now_ts =
                jiff::Timestamp::from_nanosecond(i128::from(now)).map_err(|e| e.to_string())?;
            let day = now_ts.to_zoned(tz.clone()).date();
            let z = day
                .to_datetime(t)
                .to_zoned(tz.clone())
                .map_err(|e| format!("{s}: {e}"))?;
            return u64::try_from(z.timestamp().as_nanosecond())
                .map_err(|_| format!("{s} is before 1970"));
        }
    }
    let to_ns = |t: jiff::Timestamp| {
        u64::try_from(t.as_nanosecond()).map_err(|_| format!("{s} is before 1970"))
    };
    let midnight = |days: i64| -> Result<u64, String> {
        let now = jiff::Timestamp::from_nanosecond(i128::from(now)).map_err(|e| e.to_string())?;
        let day = now.to_zoned(tz.clone()).date();
        let day = day
            .checked_add(jiff::Span::new().days(days))
            .map_err(|e| e.to_string())?;
        to_ns(
            day.to_zoned(tz.clone())
                .map_err(|e| e.to_string())?
                .timestamp(),
        )
    };
    match s {
        "now" => return Ok(now),
        "today" => return midnight(0),
        "yesterday" => return midnight(-1),
        "tomorrow" => return midnight(1),
        _ => {}
    }
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return to_ns(t);
    }
    let civil = s.parse::<jiff::civil::DateTime>().or_else(|_| {
        s.parse::<jiff::civil::Date>()
            .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
    });
    if let Ok(dt) = civil {
        let z = dt.to_zoned(tz.clone()).map_err(|e| format!("{s}: {e}"))?;
        return to_ns(z.timestamp());
    }
    let (ahead, d) = match s.strip_prefix('+') {
        Some(d) => (true, d),
        None => (
            false,
            s.strip_prefix('-').unwrap_or(s).trim_end_matches(" ago"),
        ),
    };
    match humantime::parse_duration(d.trim()) {
        Ok(d) if ahead => Ok(now.saturating_add(ns(d))),
        Ok(d) => Ok(now.saturating_sub(ns(d))),
        Err(_) => Err(format!(
            "{s:?} is not a time: give RFC 3339 (2026-11-22T10:00:00Z or +01:00), a local \
             time or date (2026-11-22 10:00, 2026-11-22), today, yesterday, a time of day \
             (06:40), @SECONDS or NSns since 1970, or a duration ago (15m, -1h, 2h ago) or ahead \
             (+30m)"
        )),
    }
}

/// A duration such as `90d` or `12h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))
}

/// Characters a terminal must not receive raw from a log: control
/// characters (a newline would split a record over lines, an escape
/// sequence could rewrite what the screen shows) and the bidirectional
/// formatting characters, which can make text display in another order than
/// it is stored ("Trojan Source", CVE-2021-42574).
fn unsafe_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Text from a log as a terminal may show it: the characters above written
/// as Rust escapes (`\u{1b}`, `\n`), everything else as it is.
pub fn terminal_text(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_on_terminal) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_on_terminal(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A path as a terminal may show it (see `terminal_text`): a directory
/// name is as much the attacker's text as a payload.
pub fn path_text(path: &std::path::Path) -> String {
    terminal_text(&path.display().to_string()).into_owned()
}

/// Characters that JSON allows raw but that hide or reorder text where the
/// JSON is shown (a terminal, a log viewer, a code review): the ones a
/// terminal must not receive (serde_json escapes only U+0000-U+001F, so
/// DEL, the C1 controls and the bidirectional controls would pass), the
/// other Unicode format characters (general category Cf: zero-width,
/// invisible operators, tags) and the line and paragraph separators.
fn hidden_in_json(c: char) -> bool {
    unsafe_on_terminal(c)
        || matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
            | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}' | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}')
}

/// JSON text with the characters above written as `\uXXXX` escapes (a
/// surrogate pair above U+FFFF), so that it decodes to exactly the same
/// strings. Such characters occur only inside strings (JSON's own syntax is
/// ASCII without DEL), so the whole text can be scanned.
pub fn json_text(json: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write as _;
    if !json.chars().any(hidden_in_json) {
        return json.into();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if hidden_in_json(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Paths as a JSON array of strings.
pub fn paths_json(files: &[std::path::PathBuf]) -> serde_json::Value {
    files.iter().map(|f| f.display().to_string()).collect()
}

/// File names for one line: the first ten, then how many more.
pub fn file_list(files: &[std::path::PathBuf]) -> String {
    const SHOWN: usize = 10;
    let mut names: Vec<String> = files
        .iter()
        .take(SHOWN)
        .map(|f| {
            let name = f.file_name().map_or_else(
                || f.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            terminal_text(&name).into_owned()
        })
        .collect();
    if files.len() > SHOWN {
        names.push(format!("and {} more", files.len() - SHOWN));
    }
    names.join(", ")
}

/// The payload as text when it is UTF-8 (escaped as `terminal_text` does,
/// so one record stays one line and shows as stored), else as
/// `base64:...`; written in pieces, never copied whole (a record may be
/// hundreds of MiB).
fn write_payload_text(w: &mut dyn Write, payload: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(payload) {
        Ok(s) => write_terminal_text(w, s),
        Err(_) => {
            w.write_all(b"base64:")?;
            write_base64(w, payload)
        }
    }
}

/// `s` escaped as `terminal_text` escapes it, written run by run.
fn write_terminal_text(w: &mut dyn Write, s: &str) -> io::Result<()> {
    let mut run = 0;
    for (i, c) in s.char_indices() {
        if unsafe_on_terminal(c) {
            w.write_all(&s.as_bytes()[run..i])?;
            write!(w, "{}", c.escape_default())?;
            run = i + c.len_utf8();
        }
    }
    w.write_all(&s.as_bytes()[run..])
}

/// Standard base64 of `bytes`, a chunk at a time (chunks of a multiple of
/// 3 bytes encode to the same text as the whole).
fn write_base64(w: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    let mut text = String::new();
    for chunk in bytes.chunks(48 << 10) {
        text.clear();
        base64::engine::general_purpose::STANDARD.encode_string(chunk, &mut text);
        w.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// `text` as a JSON string literal (serde_json's escaping), written as it
/// is escaped.
fn write_json_str(w: &mut dyn Write, text: &str) -> io::Result<()> {
    // serde_json's escaping, then `json_text`'s, as the string is written:
    // serde_json hands over the text between its escapes whole, so each
    // piece is UTF-8 (a piece that is not is passed on as it is).
    let mut escaping = JsonEscaping { w };
    serde_json::to_writer(&mut escaping, text).map_err(io::Error::other)
}

/// What a record says, for the table: its payload, or for an engine
/// record, its event.
fn write_describe(w: &mut dyn Write, r: &Record) -> io::Result<()> {
    match r.system_event() {
        Some(Ok(e)) => write_terminal_text(w, &e.to_string()),
        Some(Err(e)) => write!(w, "(malformed engine record: {e})"),
        None => write_payload_text(w, r.payload()),
    }
}

pub fn table_header(raw: bool) -> String {
    if raw {
        format!(
            "{:>10}  {:<30}  {:<18}  {:>8} {:>10} {:>8} {:>10}  {:<64}  payload",
            "seq", "time", "kind", "segment", "offset", "len", "crc", "chain hash"
        )
    } else {
        format!("{:>10}  {:<30}  {:<18}  payload", "seq", "time", "kind")
    }
}

/// One record as a table row (without the newline).
fn write_table_row(w: &mut dyn Write, r: &Record, raw: bool) -> io::Result<()> {
    write!(
        w,
        "{:>10}  {:<30}  {:<18}",
        r.seq(),
        rfc3339(r.timestamp()),
        r.kind().name()
    )?;
    if raw {
        let f = r.frame();
        write!(
            w,
            "  {:>8} {:>10} {:>8} {:>#10x}  {}",
            f.segment,
            f.offset,
            f.len,
            f.crc,
            hex(r.hash()),
        )?;
    }
    w.write_all(b"  ")?;
    write_describe(w, r)
}

/// A writer that applies [`json_text`] to what passes through it.
struct JsonEscaping<'a> {
    w: &'a mut dyn Write,
}

impl Write for JsonEscaping<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.w.write_all(json_text(text).as_bytes())?,
            Err(_) => self.w.write_all(buf)?,
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }
}

/// One record as a JSON object on one line (without the newline), fields
/// in this order: seq, time (RFC 3339), time_ns (a string: jq and
/// JavaScript round integers above 2^53), kind, payload, encoding, chain
/// hash; an engine record's event; with `raw`, where its frame lies
/// (segment, offset, frame_len, padded_len, crc). The payload is embedded
/// as JSON when it is a JSON object or array (`"encoding":"json"`: keys in
/// their order, numbers exact, whitespace dropped), else text (`utf-8`),
/// else base64; with `raw`, never embedded, so its text is the bytes the
/// chain hash covers. Written directly, as it is formatted: a dump prints
/// millions of these, some may be huge.
fn write_record_json(w: &mut dyn Write, r: &Record, raw: bool) -> io::Result<()> {
    write!(
        w,
        r#"{{"seq":{},"time":"{}","time_ns":"{}","kind":"{}","payload":"#,
        r.seq(),
        rfc3339(r.timestamp()),
        r.timestamp(),
        r.kind().name()
    )?;
    match std::str::from_utf8(r.payload()) {
        Ok(text) if !raw && embeddable_json(text).is_some() => {
            let value = embeddable_json(text).expect("checked just above");
            serde_json::to_writer(&mut JsonEscaping { w: &mut *w }, &value)
                .map_err(io::Error::other)?;
            w.write_all(br#","encoding":"json""#)?;
        }
        Ok(text) => {
            write_json_str(w, text)?;
            w.write_all(br#","encoding":"utf-8""#)?;
        }
        Err(_) => {
            w.write_all(b"\"")?;
            write_base64(w, r.payload())?;
            w.write_all(br#"","encoding":"base64""#)?;
        }
    }
    write!(w, r#","hash":"{}""#, hex(r.hash()))?;
    if let Some(e) = r.system_event() {
        let text = match e {
            Ok(e) => e.to_string(),
            Err(e) => format!("malformed: {e}"),
        };
        w.write_all(br#","event":"#)?;
        write_json_str(w, &text)?;
    }
    if raw {
        let f = r.frame();
        write!(
            w,
            r#","segment":{},"offset":{},"frame_len":{},"padded_len":{},"crc":"{:#010x}""#,
            f.segment, f.offset, f.len, f.padded_len, f.crc
        )?;
    }
    w.write_all(b"}")
}

/// A payload that is a JSON object or array, parsed (numbers kept exact),
/// where it is strict JSON: one with a key twice in an object is shown as
/// its text, since parsed, one of the two would silently vanish
/// (`{"actor":"mallory","actor":"alice"}` would read as alice).
fn embeddable_json(text: &str) -> Option<serde_json::Value> {
    if !text.trim_start().starts_with(['{', '['])
        || wormlog::json::check_strict(text.as_bytes()).is_err()
    {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// Bytes as a short human size.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::parse_time_at;
    use jiff::tz::{Offset, TimeZone};

    const HOUR: u64 = 3_600_000_000_000;

    fn at(rfc3339: &str) -> u64 {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_nanosecond() as u64
    }

    #[test]
    fn times_take_offsets_local_civil_times_dates_and_day_names() {
        let tz = TimeZone::fixed(Offset::from_hours(1).unwrap());
        let now = at("2026-11-22T12:00:00Z");
        let p = |s: &str| parse_time_at(s, now, &tz).unwrap();
        assert_eq!(p("2026-11-22T10:00:00+01:00"), at("2026-11-22T09:00:00Z"));
        assert_eq!(p("2026-11-22T09:00:00Z"), at("2026-11-22T09:00:00Z"));
        assert_eq!(p("2026-11-22 10:00"), at("2026-11-22T09:00:00Z"));
        assert_eq!(p("2026-11-22"), at("2026-11-21T23:00:00Z"));
        assert_eq!(p("today"), at("2026-11-21T23:00:00Z"));
        assert_eq!(p("yesterday"), at("2026-11-20T23:00:00Z"));
        assert_eq!(p("tomorrow"), at("2026-11-22T23:00:00Z"));
        assert_eq!(p("now"), now);
        assert_eq!(p("1795000000000000000ns"), 1_795_000_000_000_000_000);
        // journalctl's habits: @EPOCH seconds, a time of day (today, in tz).
        assert_eq!(p("@1795000000"), 1_795_000_000_000_000_000);
        assert_eq!(p("@1795000000.5"), 1_795_000_000_500_000_000);
        assert_eq!(p("06:40"), at("2026-11-22T05:40:00Z"));
        assert_eq!(p("06:40:30"), at("2026-11-22T05:40:30Z"));
        // A bare number is neither: it must say which (issue 27).
        let e = parse_time_at("1795000000", now, &tz).unwrap_err();
        assert!(
            e.contains("@1795000000") && e.contains("1795000000ns"),
            "{e}"
        );
    }

    #[test]
    fn durations_count_back_from_now_unless_marked_ahead() {
        let tz = TimeZone::UTC;
        let now = at("2026-11-22T12:00:00Z");
        let p = |s: &str| parse_time_at(s, now, &tz).unwrap();
        assert_eq!(p("1h"), now - HOUR);
        assert_eq!(p("-1h"), now - HOUR);
        assert_eq!(p("2h ago"), now - 2 * HOUR);
        assert_eq!(p("+30m"), now + HOUR / 2);
        let e = parse_time_at("last tuesday", now, &tz).unwrap_err();
        assert!(e.contains("yesterday"), "{e}");
    }
}
