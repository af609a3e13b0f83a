//! Line counters. Every line read is exactly one of: written, rejected, outside the window;
//! `lines_in = lines_out + rejected + out_of_window` holds for every source and in total.

use serde::{Deserialize, Serialize};

/// Counters of one source (or of the whole job).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub lines_in: u64,
    pub lines_out: u64,
    pub rejected: u64,
    pub out_of_window: u64,
}

impl Counters {
    /// A line that goes to the output.
    pub fn accepted(&mut self) {
        self.lines_in += 1;
        self.lines_out += 1;
    }
    /// A line that could not be parsed (kept in the rejects file).
    pub fn rejected(&mut self) {
        self.lines_in += 1;
        self.rejected += 1;
    }
    /// A line whose event time lies outside the window.
    pub fn outside_window(&mut self) {
        self.lines_in += 1;
        self.out_of_window += 1;
    }
    pub fn add(&mut self, other: &Counters) {
        self.lines_in += other.lines_in;
        self.lines_out += other.lines_out;
        self.rejected += other.rejected;
        self.out_of_window += other.out_of_window;
    }
    /// Whether the identity holds.
    pub fn balanced(&self) -> bool {
        self.lines_in == self.lines_out + self.rejected + self.out_of_window
    }
}
