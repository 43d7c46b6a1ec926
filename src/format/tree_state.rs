//! `wormlog.tree` (format-spec.md §14.3): how many entries of each level
//! file were synced, so that entries a crash may have torn are never used.

/// `magic[8] "wlogtree" | version u32 LE (1) | levels u32 LE (n ≤ 8) |
/// n × entries u64 LE | crc32 u32 LE of everything before`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeState {
    /// Entries of level 0, 1, … that are durable in their files.
    pub entries: Vec<u64>,
}

const MAGIC: &[u8; 8] = b"wlogtree";
const VERSION: u32 = 1;

impl TreeState {
    /// No state file is longer (eight levels).
    pub const LEN_MAX: usize = 16 + 8 * super::merkle::LEVELS_MAX + 4;

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.entries.len() <= super::merkle::LEVELS_MAX);
        let mut out = Vec::with_capacity(Self::LEN_MAX);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for t in &self.entries {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a state file; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<TreeState, String> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err("not a wormlog tree state file".into());
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if u32_at(8) != VERSION {
            return Err(format!("unknown tree state version {}", u32_at(8)));
        }
        let n = u32_at(12) as usize;
        if n > super::merkle::LEVELS_MAX || bytes.len() != 16 + 8 * n + 4 {
            return Err(format!("{n} levels in a file of {} bytes", bytes.len()));
        }
        let crc = u32_at(16 + 8 * n);
        if crc != crc32fast::hash(&bytes[..16 + 8 * n]) {
            return Err("CRC mismatch".into());
        }
        let entries = (0..n)
            .map(|i| {
                let at = 16 + 8 * i;
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[at..at + 8]);
                u64::from_le_bytes(b)
            })
            .collect();
        Ok(TreeState { entries })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let s = TreeState {
            entries: vec![300, 1, 0],
        };
        let b = s.encode();
        assert_eq!(TreeState::decode(&b), Ok(s));
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x40;
            assert!(TreeState::decode(&bad).is_err(), "byte {i}");
        }
        assert!(TreeState::decode(&b[..b.len() - 1]).is_err());
    }
}
