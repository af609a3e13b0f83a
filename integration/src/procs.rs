//! The processes of a YARN application on this machine (the mini cluster's NodeManagers run
//! here): its application master and `filex worker` processes found by pid, for tests that
//! kill or stop them, and signals sent to them. Linux only (`pgrep`, `/proc`); nothing here
//! asks the ResourceManager.

use std::fs;
use std::process::{Command, Stdio};

/// The pid of the application master of attempt `attempt` of application `id` running on
/// this machine: the `filex am` process whose container is that attempt's first. The AM
/// itself, not the NodeManager's shell around it: killing the shell makes the NodeManager
/// SIGTERM the AM, which then discards its staged output instead of dying with it.
pub fn am_pid(id: &str, attempt: u32) -> Option<String> {
    let cluster = id.trim_start_matches("application_");
    let container = format!("{cluster}_{attempt:02}_000001");
    let out = Command::new("pgrep")
        .args(["-f", "filex am --spec"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|pid| {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            comm.trim() == "filex"
                && fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| {
                    env.split(|b| *b == 0).any(|var| {
                        let var = String::from_utf8_lossy(var);
                        var.starts_with("CONTAINER_ID=") && var.ends_with(&container)
                    })
                })
        })
        .map(str::to_string)
}

/// The `filex worker` processes of application `id` on this machine, by pid.
pub fn worker_pids(id: &str) -> Vec<String> {
    let cluster = id.trim_start_matches("application_");
    let pattern = format!("worker --connect .*--id container_(e[0-9]+_)?{cluster}_");
    let out = Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .expect("run pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Sends `sig` (`-KILL`, `-STOP`, `-CONT`, …) to each of `pids`; a process already gone is
/// not an error.
pub fn signal(sig: &str, pids: &[String]) {
    for pid in pids {
        let _ = Command::new("kill")
            .args([sig, pid])
            .stderr(Stdio::null())
            .status();
    }
}
