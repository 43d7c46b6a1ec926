//! The C2SP tlog-tiles read API, live from each log
//! (`/v1/logs/NAME/checkpoint`, `/v1/logs/NAME/tile/<L>/<N>[.p/<W>]`,
//! `/v1/logs/NAME/tile/entries/<N>[.p/<W>]`), and inclusion and
//! consistency proofs as JSON. These answer hashes and leaf data only (no
//! payload), so they write no access record: a monitor polling the
//! checkpoint would otherwise grow the log with every poll.

use crate::app::{ApiError, Shared};
use crate::config::Scope;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use wormlog::format::merkle::{leaf_data, tile_path, LEAF_DATA_LEN, TILE_WIDTH};

/// What a tile path names: a hash tile of a level or an entry bundle.
#[derive(Debug, PartialEq, Eq)]
struct TileRef {
    level: Option<u32>,
    index: u64,
    width: u64,
}

/// Parses `rest` (after `tile/`, percent-decoded as every URL path is),
/// accepting only the canonical spelling (what `tile_path` writes):
/// anything else is 404, as a static file server would answer.
fn parse_tile(rest: &str) -> Option<TileRef> {
    let (level_text, n_path) = rest.split_once('/')?;
    let level = match level_text {
        "entries" => None,
        l => Some(l.parse::<u32>().ok().filter(|l| *l < 8)?),
    };
    let (n_text, width) = match n_path.split_once(".p/") {
        Some((n, w)) => (
            n,
            w.parse::<u64>()
                .ok()
                .filter(|w| (1..TILE_WIDTH).contains(w))?,
        ),
        None => (n_path, TILE_WIDTH),
    };
    let digits: String = n_text.chars().filter(|c| *c != 'x' && *c != '/').collect();
    if digits.is_empty() || digits.len() > 21 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index = digits.parse::<u64>().ok()?;
    let t = TileRef {
        level,
        index,
        width,
    };
    (tile_path(level, index, width) == format!("tile/{rest}")).then_some(t)
}

/// `GET /v1/logs/NAME/checkpoint`: the signed note (the unsigned body for
/// a log with no `checkpoint_key`) of the durable head.
pub async fn checkpoint(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, served) = app.allow(&headers, Scope::Read, &name)?;
    let note = app.blocking(move || served.checkpoint_note()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        note,
    )
        .into_response())
}

/// `GET /v1/logs/NAME/tile/...`.
pub async fn tile(
    State(app): State<Shared>,
    Path((name, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, served) = app.allow(&headers, Scope::Read, &name)?;
    let Some(t) = parse_tile(&rest) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_tile",
            format!("tile/{rest}"),
        ));
    };
    let full = t.width == TILE_WIDTH;
    let bytes = tokio::task::spawn_blocking(move || {
        let need = t.leaves_needed();
        if served.durable_size(need)? < need {
            return Err(wormlog::Error::TreeUnavailable {
                detail: format!("tile/{rest}: beyond the durable head"),
            });
        }
        tile_bytes(&served.log, &t)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "panic", e.to_string()))?
    .map_err(|e| match e {
        wormlog::Error::TreeUnavailable { detail } => {
            ApiError::new(StatusCode::NOT_FOUND, "no_such_tile", detail)
        }
        wormlog::Error::SeqOutOfRange { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "no_such_tile", e.to_string())
        }
        e => app.count(ApiError::engine(e)),
    })?;
    // A full tile never changes; a partial one is replaced by a wider one.
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        bytes,
    )
        .into_response())
}

impl TileRef {
    /// The tree size a tile needs: every leaf under its last hash.
    fn leaves_needed(&self) -> u64 {
        let end = u128::from(self.index) * u128::from(TILE_WIDTH) + u128::from(self.width);
        let shift = 8 * self.level.unwrap_or(0);
        u64::try_from(end << shift).unwrap_or(u64::MAX)
    }
}

fn tile_bytes(log: &wormlog::Log, t: &TileRef) -> wormlog::Result<Vec<u8>> {
    match t.level {
        Some(level) => Ok(log
            .tile(level, t.index, t.width)?
            .iter()
            .flat_map(|h| *h.as_bytes())
            .collect()),
        None => {
            let lo = t.index * TILE_WIDTH + 1;
            let hi = lo + t.width - 1;
            if hi > log.head().seq {
                return Err(wormlog::Error::TreeUnavailable {
                    detail: format!("entries {lo}..={hi} are not all in the log yet"),
                });
            }
            let mut out = Vec::with_capacity(t.width as usize * (LEAF_DATA_LEN + 2));
            let mut want = lo;
            for r in log.read(lo..=hi)? {
                let r = r?;
                if r.seq() != want {
                    break;
                }
                want += 1;
                out.extend_from_slice(&(LEAF_DATA_LEN as u16).to_be_bytes());
                out.extend_from_slice(&leaf_data(r.seq(), r.timestamp(), r.kind() as u8, r.hash()));
            }
            if want != hi + 1 {
                return Err(wormlog::Error::TreeUnavailable {
                    detail: format!("entries {lo}..={hi}: retention dropped some"),
                });
            }
            Ok(out)
        }
    }
}

/// The whole-number parameters of `raw`, by name: unknown or repeated
/// names and values that are not numbers are 400 (as JSON, as every error).
fn numbers(raw: Option<&str>, names: &[&str]) -> Result<Vec<Option<u64>>, ApiError> {
    let mut out = vec![None; names.len()];
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let i = names
            .iter()
            .position(|n| *n == k)
            .ok_or_else(|| ApiError::bad_request(format!("{k}: unknown parameter")))?;
        let n = v
            .parse::<u64>()
            .map_err(|_| ApiError::bad_request(format!("{k}={v}: not a whole number")))?;
        if out[i].replace(n).is_some() {
            return Err(ApiError::bad_request(format!("{k} given twice")));
        }
    }
    Ok(out)
}

/// The size `asked`, if the log has that much durable; with none asked
/// for, the durable size (at least `least`, or not found). Beyond the
/// durable head: not found (a crash may take those records back).
fn within_durable(
    served: &crate::logs::Served,
    asked: Option<u64>,
    least: u64,
) -> wormlog::Result<u64> {
    let want = asked.unwrap_or(least);
    let durable = served.durable_size(want)?;
    if durable < want {
        return Err(wormlog::Error::TreeUnavailable {
            detail: format!("tree size {want} is beyond the durable head ({durable})"),
        });
    }
    Ok(asked.unwrap_or(durable))
}

/// A proof request's log (read scope) and its two numbers: the first
/// required, the second optional.
fn proof_request(
    app: &Shared,
    headers: &HeaderMap,
    name: &str,
    raw: Option<String>,
    names: [&str; 2],
) -> Result<(std::sync::Arc<crate::logs::Served>, u64, Option<u64>), ApiError> {
    let (_, served) = app.allow(headers, Scope::Read, name)?;
    let q = numbers(raw.as_deref(), &names).map_err(|e| app.count(e))?;
    let first =
        q[0].ok_or_else(|| app.count(ApiError::bad_request(format!("{}: missing", names[0]))))?;
    Ok((served, first, q[1]))
}

/// `GET /v1/logs/NAME/proof/inclusion?seq=S[&size=N]` (N: the durable
/// head's).
pub async fn inclusion(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (served, seq, size) = proof_request(&app, &headers, &name, raw, ["seq", "size"])?;
    let v = app
        .blocking(move || -> wormlog::Result<serde_json::Value> {
            let size = within_durable(&served, size, seq)?;
            let p = served.log.prove_inclusion(seq, size)?;
            let root = served.log.tree_head_at(size)?.root;
            Ok(serde_json::json!({
                "seq": p.seq,
                "tree_size": p.tree_size,
                "root": root.to_hex(),
                "leaf": wormlog::format::hex(p.leaf),
                "hashes": p.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

/// `GET /v1/logs/NAME/proof/consistency?old=M[&new=N]`.
pub async fn consistency(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (served, old, new) = proof_request(&app, &headers, &name, raw, ["old", "new"])?;
    let v = app
        .blocking(move || -> wormlog::Result<serde_json::Value> {
            let new = within_durable(&served, new, old)?;
            let p = served.log.prove_consistency(old, new)?;
            Ok(serde_json::json!({
                "old_size": p.old_size,
                "new_size": p.new_size,
                "hashes": p.hashes.iter().map(|h| h.to_hex()).collect::<Vec<_>>(),
            }))
        })
        .await?;
    Ok(axum::Json(v).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_only_in_their_canonical_spelling() {
        let full = parse_tile("0/x001/x234/067").unwrap();
        assert_eq!(
            full,
            TileRef {
                level: Some(0),
                index: 1_234_067,
                width: 256
            }
        );
        let part = parse_tile("entries/000.p/8").unwrap();
        assert_eq!(
            part,
            TileRef {
                level: None,
                index: 0,
                width: 8
            }
        );
        for bad in [
            "0/1",
            "0/0001",
            "0/x000/001",
            "0/000.p/256",
            "0/000.p/0",
            "9/000",
            "0/abc",
            "0/000/",
        ] {
            assert!(parse_tile(bad).is_none(), "{bad}");
        }
    }
}
