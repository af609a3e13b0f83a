//! Rendering of node lists, application lists and reports: text in the spirit of the `yarn`
//! CLI's output, and the `--json` documents scripts and schedulers parse (the Airflow
//! trigger reads [`AppJson`]; its keys are a contract, see the README). Pure functions, so
//! they are tested without a cluster.

use std::fmt::Write;

use serde::Serialize;
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

/// One application in `filex status --json` and `filex yarn apps --json`. The keys and their
/// meaning are a contract with the scripts that parse them: add keys, never rename one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppJson<'a> {
    pub application_id: String,
    pub name: &'a str,
    pub user: &'a str,
    pub queue: &'a str,
    pub application_type: &'a str,
    /// YARN's state: `NEW` … `RUNNING`, `FINISHED`, `FAILED`, `KILLED`.
    pub state: &'static str,
    /// `UNDEFINED` until the application ends, then `SUCCEEDED`, `FAILED` or `KILLED`.
    pub final_status: &'static str,
    /// 0.0 to 1.0.
    pub progress: f32,
    /// `""` when there is none.
    pub tracking_url: &'a str,
    pub diagnostics: &'a str,
    /// 0 when unknown.
    pub start_time_ms: i64,
    /// 0 while running.
    pub finish_time_ms: i64,
    pub tags: &'a [String],
}

impl<'a> From<&'a ApplicationReport> for AppJson<'a> {
    fn from(r: &'a ApplicationReport) -> Self {
        AppJson {
            application_id: r.application_id.to_string(),
            name: &r.name,
            user: &r.user,
            queue: &r.queue,
            application_type: &r.application_type,
            state: r.state.as_str(),
            final_status: r.final_status.as_str(),
            progress: if r.progress.is_finite() {
                r.progress.clamp(0.0, 1.0)
            } else {
                0.0
            },
            tracking_url: &r.tracking_url,
            diagnostics: &r.diagnostics,
            start_time_ms: r.start_time.max(0),
            finish_time_ms: r.finish_time.max(0),
            tags: &r.tags,
        }
    }
}

/// One NodeManager in `filex yarn nodes --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeJson<'a> {
    /// `host:port`.
    pub node_id: String,
    pub state: &'static str,
    pub http_address: &'a str,
    pub rack: &'a str,
    pub containers: i32,
    pub memory_used_mb: i64,
    pub memory_capacity_mb: i64,
    pub vcores_used: i32,
    pub vcores_capacity: i32,
    pub health_report: &'a str,
    pub node_labels: &'a [String],
}

impl<'a> From<&'a NodeReport> for NodeJson<'a> {
    fn from(n: &'a NodeReport) -> Self {
        NodeJson {
            node_id: n.node_id.to_string(),
            state: n.state.as_str(),
            http_address: &n.http_address,
            rack: &n.rack_name,
            containers: n.num_containers,
            memory_used_mb: n.used.memory_mb,
            memory_capacity_mb: n.capability.memory_mb,
            vcores_used: n.used.vcores,
            vcores_capacity: n.capability.vcores,
            health_report: &n.health_report,
            node_labels: &n.node_labels,
        }
    }
}

fn pretty(value: &impl Serialize) -> String {
    // Structs of strings, numbers and string lists: serde_json cannot fail on them.
    let mut s = serde_json::to_string_pretty(value).expect("plain structs serialise");
    s.push('\n');
    s
}

/// `filex status APP_ID --json`: one object.
pub fn report_json(r: &ApplicationReport) -> String {
    pretty(&AppJson::from(r))
}

/// `filex yarn apps --json`: an array of the objects of [`report_json`].
pub fn apps_json(apps: &[ApplicationReport]) -> String {
    pretty(&apps.iter().map(AppJson::from).collect::<Vec<_>>())
}

/// `filex yarn nodes --json`: an array of [`NodeJson`].
pub fn nodes_json(nodes: &[NodeReport]) -> String {
    pretty(&nodes.iter().map(NodeJson::from).collect::<Vec<_>>())
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

    #[test]
    fn report_json_has_the_contract_keys() {
        let mut a = app();
        a.diagnostics = "line \"one\"\nline two".into();
        let v: serde_json::Value = serde_json::from_str(&report_json(&a)).unwrap();
        let obj = v.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = vec![
            "application_id",
            "name",
            "user",
            "queue",
            "application_type",
            "state",
            "final_status",
            "progress",
            "tracking_url",
            "diagnostics",
            "start_time_ms",
            "finish_time_ms",
            "tags",
        ];
        want.sort_unstable();
        let mut got = keys.clone();
        got.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(v["application_id"], "application_1700000000000_0007");
        assert_eq!(v["application_type"], "FILEX");
        assert_eq!(v["state"], "RUNNING");
        assert_eq!(v["final_status"], "UNDEFINED");
        assert_eq!(v["progress"].as_f64(), Some(0.5));
        assert_eq!(v["start_time_ms"].as_i64(), Some(1));
        assert_eq!(v["finish_time_ms"].as_i64(), Some(0));
        assert_eq!(v["tags"], serde_json::json!(["t1"]));
        assert_eq!(v["diagnostics"], "line \"one\"\nline two");
    }

    #[test]
    fn report_json_normalises_odd_reports() {
        let mut a = app();
        a.state = ApplicationState::Killed;
        a.final_status = FinalApplicationStatus::Killed;
        a.progress = f32::NAN;
        a.start_time = -1;
        a.tracking_url.clear();
        let v: serde_json::Value = serde_json::from_str(&report_json(&a)).unwrap();
        assert_eq!(v["state"], "KILLED");
        assert_eq!(v["final_status"], "KILLED");
        assert_eq!(v["progress"].as_f64(), Some(0.0));
        assert_eq!(v["start_time_ms"].as_i64(), Some(0));
        assert_eq!(v["tracking_url"], "");
        a.progress = 1.5;
        let v: serde_json::Value = serde_json::from_str(&report_json(&a)).unwrap();
        assert_eq!(v["progress"].as_f64(), Some(1.0));
    }

    #[test]
    fn lists_are_arrays_even_when_empty() {
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&apps_json(&[])).unwrap(),
            serde_json::json!([])
        );
        let v: serde_json::Value = serde_json::from_str(&apps_json(&[app(), app()])).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[1]["name"], "fuse-logs");
        let v: serde_json::Value = serde_json::from_str(&nodes_json(&[node("nm-a")])).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{
                "node_id": "nm-a:4545",
                "state": "RUNNING",
                "http_address": "nm-a:8042",
                "rack": "/default-rack",
                "containers": 1,
                "memory_used_mb": 1024,
                "memory_capacity_mb": 8192,
                "vcores_used": 1,
                "vcores_capacity": 8,
                "health_report": "",
                "node_labels": [],
            }])
        );
    }
}
