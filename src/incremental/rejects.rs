//! The rejects file of a re-run: the lines of the shards it read, and the previous file's
//! lines of the shards it did not, in the plan's shard order — the bytes a full run writes
//! (a full run's map tasks take consecutive shards, and each writes its rejects in shard
//! order).

use std::collections::HashMap;

/// Rejected lines (TSV: source, shard URL, line number, reason, raw line) grouped by shard
/// URL, each shard's lines in their order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectsByShard {
    by_url: HashMap<String, Vec<u8>>,
}

impl RejectsByShard {
    /// Adds the lines of `tsv` (whole lines, `\n`-terminated; a last line without one is
    /// completed). Fails on a line without the shard field.
    pub fn add(&mut self, tsv: &[u8]) -> Result<(), String> {
        for line in tsv.split_inclusive(|&b| b == b'\n') {
            let mut fields = line.splitn(3, |&b| b == b'\t');
            let (_source, url) = (fields.next(), fields.next());
            let (Some(url), Some(_)) = (url, fields.next()) else {
                return Err(format!(
                    "a rejects line without a shard field: {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                ));
            };
            let url = String::from_utf8_lossy(url).into_owned();
            let chunk = self.by_url.entry(url).or_default();
            chunk.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                chunk.push(b'\n');
            }
        }
        Ok(())
    }

    /// The lines of the shard `url` (empty if it had none).
    pub fn of(&self, url: &str) -> &[u8] {
        self.by_url.get(url).map_or(&[], Vec::as_slice)
    }

    /// How many lines the shard `url` has.
    pub fn lines_of(&self, url: &str) -> u64 {
        self.of(url).iter().filter(|&&b| b == b'\n').count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_grouped_by_shard_in_order() {
        let mut r = RejectsByShard::default();
        r.add(b"up\tfile:///a.gz\t3\tbad\tx\ty\nqn\tfile:///b.gz\t1\tbad\tz\nup\tfile:///a.gz\t9\tbad\tw")
            .unwrap();
        assert_eq!(
            r.of("file:///a.gz"),
            b"up\tfile:///a.gz\t3\tbad\tx\ty\nup\tfile:///a.gz\t9\tbad\tw\n"
        );
        assert_eq!(r.lines_of("file:///a.gz"), 2);
        assert_eq!(r.of("file:///b.gz"), b"qn\tfile:///b.gz\t1\tbad\tz\n");
        assert_eq!(r.of("file:///c.gz"), b"");
        assert!(r.add(b"no tabs here\n").is_err());
        r.add(b"").unwrap();
    }
}
