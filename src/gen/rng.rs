//! A small seeded pseudo-random generator (SplitMix64) and key hashing.
//!
//! The generator needs millions of draws per second and exact reproducibility for a given
//! seed, not statistical quality; so no external crate and no global state: every line
//! derives its own generator from `(seed, stream, line number)`.

/// Adds the golden-ratio increment and mixes; the SplitMix64 step.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Finalises a 64-bit value (the SplitMix64 / Murmur3 mixer).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hashes a list of integers into one well-mixed key (order matters).
pub fn hash_key(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7C_C1_B7_27_22_0A_95, |acc, &p| {
        mix64(acc ^ p).wrapping_add(GOLDEN)
    })
}

/// SplitMix64: one `u64` of state, a few multiplications per draw.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence is fully determined by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix64(seed) }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in `0..n` (`0` when `n == 0`), by multiply-shift (no division).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo).saturating_add(1))
    }

    /// True with probability `p` (see [`Chance`]).
    pub fn chance(&mut self, p: Chance) -> bool {
        self.next_u64() < p.0
    }

    /// Picks one element of a non-empty slice uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        // `below(len)` is always `< len`; an empty slice is a programming error caught in tests.
        &items[self.below(items.len() as u64) as usize]
    }

    /// Picks an index by integer weights (`weights` non-empty, sum > 0).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len().saturating_sub(1)
    }
}

/// A probability as a 64-bit threshold, so that a draw is one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chance(u64);

impl Chance {
    /// Never.
    pub const NEVER: Chance = Chance(0);

    /// `p` clamped to `[0, 1]`; `1.0` becomes "always but for 1 in 2^64".
    pub fn new(p: f64) -> Chance {
        if p.is_nan() || p <= 0.0 {
            Chance(0)
        } else if p >= 1.0 {
            Chance(u64::MAX)
        } else {
            Chance((p * 18_446_744_073_709_551_616.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_different_seed_differs() {
        let a: Vec<u64> = (0..8)
            .map({
                let mut r = Rng::new(7);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = Rng::new(7);
        let b: Vec<u64> = (0..8).map(|_| r.next_u64()).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(8);
        assert_ne!(a[0], r.next_u64());
    }

    #[test]
    fn below_and_range_stay_in_bounds_and_cover_them() {
        let mut r = Rng::new(1);
        let mut seen = [false; 6];
        for _ in 0..10_000 {
            let x = r.range(10, 15);
            assert!((10..=15).contains(&x));
            seen[(x - 10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.below(0), 0);
    }

    #[test]
    fn chance_matches_its_probability_roughly() {
        let mut r = Rng::new(3);
        let p = Chance::new(0.25);
        let hits = (0..100_000).filter(|_| r.chance(p)).count();
        assert!((23_000..27_000).contains(&hits), "{hits}");
        assert!(!(0..1000).any(|_| r.chance(Chance::NEVER)));
    }

    #[test]
    fn weighted_follows_weights() {
        let mut r = Rng::new(5);
        let mut counts = [0u32; 3];
        for _ in 0..60_000 {
            counts[r.weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(counts[2] > counts[0] * 3 / 2, "{counts:?}");
    }

    #[test]
    fn hash_key_depends_on_order() {
        assert_ne!(hash_key(&[1, 2]), hash_key(&[2, 1]));
        assert_eq!(hash_key(&[1, 2]), hash_key(&[1, 2]));
    }
}
