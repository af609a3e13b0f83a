//! Hadoop IPC, SASL and the YARN protocols in Rust (work in progress).
