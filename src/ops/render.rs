//! Text rendering of node lists, application lists and reports, in the
//! spirit of the `yarn` CLI's output. Pure functions, so they are tested
//! without a cluster.

use std::fmt::Write;

use yarn::{ApplicationReport, ApplicationState, NodeReport};

/// Left-aligned columns separated by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// `filex yarn nodes`.
pub fn nodes(nodes: &[NodeReport]) -> String {
    let mut out = format!("Total Nodes:{}\n", nodes.len());
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                n.node_id.to_string(),
                n.state.to_string(),
                n.rack_name.clone(),
                n.http_address.clone(),
                n.num_containers.to_string(),
                format!("{}/{} MB", n.used.memory_mb, n.capability.memory_mb),
                format!("{}/{}", n.used.vcores, n.capability.vcores),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Node-Id",
            "Node-State",
            "Rack",
            "Node-Http-Address",
            "Containers",
            "Memory-Used",
            "VCores-Used",
        ],
        &rows,
    ));
    out
}

/// `filex yarn apps`.
pub fn apps(apps: &[ApplicationReport], states: &[ApplicationState], types: &[String]) -> String {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    let mut out = format!(
        "Total number of applications (application-types: {types:?} and states: {states:?}):{}\n",
        apps.len()
    );
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            vec![
                a.application_id.to_string(),
                a.name.clone(),
                a.application_type.clone(),
                a.user.clone(),
                a.queue.clone(),
                a.state.to_string(),
                a.final_status.to_string(),
                format!("{:.0}%", a.progress * 100.0),
                a.tracking_url.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "Application-Id",
            "Application-Name",
            "Application-Type",
            "User",
            "Queue",
            "State",
            "Final-State",
            "Progress",
            "Tracking-URL",
        ],
        &rows,
    ));
    out
}

/// `filex status APP_ID`.
pub fn report(r: &ApplicationReport) -> String {
    let mut out = String::from("Application Report :\n");
    let mut field = |k: &str, v: String| {
        let _ = writeln!(out, "\t{k} : {v}");
    };
    field("Application-Id", r.application_id.to_string());
    field("Application-Name", r.name.clone());
    field("Application-Type", r.application_type.clone());
    field("User", r.user.clone());
    field("Queue", r.queue.clone());
    field("Application Tags", r.tags.join(","));
    field("Start-Time", r.start_time.to_string());
    field("Finish-Time", r.finish_time.to_string());
    field("Progress", format!("{:.0}%", r.progress * 100.0));
    field("State", r.state.to_string());
    field("Final-State", r.final_status.to_string());
    field("Tracking-URL", r.tracking_url.clone());
    field("RPC Port", r.rpc_port.to_string());
    field("AM Host", r.host.clone());
    field(
        "Current Attempt",
        r.current_attempt.map(|a| a.to_string()).unwrap_or_default(),
    );
    field("Unmanaged Application", r.unmanaged.to_string());
    field("Diagnostics", r.diagnostics.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use yarn::{ApplicationId, FinalApplicationStatus, NodeId, NodeState, Resource};

    fn node(host: &str) -> NodeReport {
        NodeReport {
            node_id: NodeId {
                host: host.into(),
                port: 4545,
            },
            http_address: format!("{host}:8042"),
            rack_name: "/default-rack".into(),
            used: Resource::new(1024, 1),
            capability: Resource::new(8192, 8),
            num_containers: 1,
            state: NodeState::Running,
            health_report: String::new(),
            node_labels: vec![],
        }
    }

    fn app() -> ApplicationReport {
        ApplicationReport {
            application_id: ApplicationId {
                cluster_timestamp: 1700000000000,
                id: 7,
            },
            user: "alice".into(),
            queue: "default".into(),
            name: "fuse-logs".into(),
            host: "N/A".into(),
            rpc_port: -1,
            state: ApplicationState::Running,
            final_status: FinalApplicationStatus::Undefined,
            tracking_url: "http://rm:8088/proxy/application_1700000000000_0007/".into(),
            diagnostics: String::new(),
            start_time: 1,
            finish_time: 0,
            progress: 0.5,
            application_type: "FILEX".into(),
            tags: vec!["t1".into()],
            current_attempt: None,
            unmanaged: false,
            am_rm_token: None,
        }
    }

    #[test]
    fn nodes_table() {
        let s = nodes(&[node("nm-a"), node("nm-bbbbbb")]);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "Total Nodes:2");
        assert!(lines[1].starts_with("Node-Id"));
        assert!(lines[2].starts_with("nm-a:4545 "));
        assert!(lines[3].contains("RUNNING"));
        assert!(lines[3].contains("1024/8192 MB"));
        // Columns line up.
        assert_eq!(lines[2].find("RUNNING"), lines[3].find("RUNNING"));
    }

    #[test]
    fn apps_table_and_report() {
        let s = apps(&[app()], &[ApplicationState::Running], &[]);
        assert!(s.starts_with("Total number of applications"));
        assert!(s.contains(":1\n"));
        assert!(s.contains("application_1700000000000_0007"));
        assert!(s.contains("50%"));
        let r = report(&app());
        assert!(r.contains("\tState : RUNNING\n"));
        assert!(r.contains("\tFinal-State : UNDEFINED\n"));
        assert!(r.contains("\tApplication Tags : t1\n"));
    }
}
