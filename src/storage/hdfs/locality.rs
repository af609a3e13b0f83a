//! Where a file's bytes are: its blocks with the hosts of their replicas, and the ranking of
//! hosts that task placement uses. Pure; the lookups live in [`super::locator`].

use std::collections::HashMap;

/// One block: its length and the hosts of its live replicas, nearest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockHosts {
    pub length: u64,
    pub hosts: Vec<String>,
}

/// Hosts ranked by the bytes of the file they hold (a host counts a block once even with two
/// replicas on it); ties keep the host seen first (the NameNode lists the nearest replica
/// first).
pub fn rank_hosts(blocks: &[BlockHosts]) -> Vec<String> {
    if let [block] = blocks {
        // Every host holds the same bytes: the NameNode's order, each host once.
        let mut hosts: Vec<String> = Vec::with_capacity(block.hosts.len());
        for host in &block.hosts {
            if !hosts.contains(host) {
                hosts.push(host.clone());
            }
        }
        return hosts;
    }
    let mut bytes: HashMap<&str, (u64, usize)> = HashMap::new();
    let mut seen = 0usize;
    for block in blocks {
        let mut in_block: Vec<&str> = Vec::with_capacity(block.hosts.len());
        for host in &block.hosts {
            if in_block.contains(&host.as_str()) {
                continue;
            }
            in_block.push(host);
            let entry = bytes.entry(host).or_insert_with(|| {
                seen += 1;
                (0, seen)
            });
            entry.0 += block.length.max(1);
        }
    }
    let mut ranked: Vec<(&str, (u64, usize))> = bytes.into_iter().collect();
    ranked.sort_by(|a, b| {
        b.1 .0
            .cmp(&a.1 .0)
            .then(a.1 .1.cmp(&b.1 .1))
            .then(a.0.cmp(b.0))
    });
    ranked.into_iter().map(|(h, _)| h.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_bytes_then_first_seen() {
        let b = |length, hosts: &[&str]| BlockHosts {
            length,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        // Two replicas on one host count once; dn-b holds the most bytes.
        let blocks = [b(10, &["dn-a", "dn-a", "dn-b"]), b(20, &["dn-b", "dn-c"])];
        assert_eq!(rank_hosts(&blocks), vec!["dn-b", "dn-c", "dn-a"]);
        // Equal bytes: the NameNode's order (nearest first) decides.
        assert_eq!(rank_hosts(&[b(5, &["z", "a"])]), vec!["z", "a"]);
        assert_eq!(rank_hosts(&[b(5, &["z", "a", "z"])]), vec!["z", "a"]);
        assert!(rank_hosts(&[]).is_empty());
    }
}
