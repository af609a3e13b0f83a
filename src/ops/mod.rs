//! Operator commands of the `filex` binary that talk to YARN directly:
//! `filex yarn nodes`, `filex yarn apps`, `filex status APP_ID` and
//! `filex kill APP_ID` — the `yarn node -list`, `yarn application -list`,
//! `-status` and `-kill` an operator reaches for, without a JVM.
//!
//! Configuration comes from `--conf-dir`, else `HADOOP_CONF_DIR` /
//! `YARN_CONF_DIR` / `HADOOP_HOME/etc/hadoop`, plus `-D key=value`
//! ([`crate::settings::ConfArgs`]). Every command is bounded by `--timeout`;
//! an unreachable ResourceManager is reported with its address (exit code
//! [`exit::UNREACHABLE`], a missing application [`exit::NOT_FOUND`]). Rendering is in [`render`] (pure, tested).

pub mod render;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};

use yarn::{
    ApplicationClient, ApplicationFilter, ApplicationId, ApplicationState, IpcOptions,
    KerberosCredentials, NodeState,
};

use crate::exit;
use crate::settings::ConfArgs;

/// Where to find the cluster, and how long to wait for it.
#[derive(Debug, Clone, clap::Args)]
pub struct HadoopArgs {
    #[command(flatten)]
    pub conf: ConfArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS", global = true)]
    pub timeout: u64,
    #[command(flatten)]
    pub kerberos: KerberosArgs,
}

/// Kerberos credentials on a cluster with `hadoop.security.authentication=kerberos`:
/// a principal and its keytab, else the ticket cache (`kinit`, `KRB5CCNAME`). The one
/// definition of `--principal`/`--keytab`, for every command that takes them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct KerberosArgs {
    /// Kerberos principal to authenticate as (with --keytab), e.g. filex@EXAMPLE.COM.
    #[arg(long, value_name = "PRINCIPAL", global = true)]
    pub principal: Option<String>,
    /// Keytab holding the --principal's keys (no kinit needed).
    #[arg(long, value_name = "FILE", global = true)]
    pub keytab: Option<std::path::PathBuf>,
}

impl KerberosArgs {
    /// The credentials these flags name; one of the two without the other is an error
    /// naming the missing flag (checked here rather than by clap, whose message spans
    /// several lines).
    pub fn credentials(&self) -> anyhow::Result<KerberosCredentials> {
        match (&self.principal, &self.keytab) {
            (Some(principal), Some(keytab)) => Ok(KerberosCredentials::Keytab {
                principal: principal.clone(),
                keytab: keytab.clone(),
            }),
            (None, Some(keytab)) => Err(anyhow!(
                "--keytab {} needs --principal: the principal whose keys it holds, e.g. --principal filex@EXAMPLE.COM",
                keytab.display()
            )),
            (Some(principal), None) => Err(anyhow!(
                "--principal {principal} needs --keytab: a keytab holding its keys (or leave both out and kinit {principal})"
            )),
            (None, None) => Ok(KerberosCredentials::TicketCache),
        }
    }

    /// Sets up the Kerberos identity of this process's HDFS clients (`filex run`,
    /// `filex plan`): with a keytab, hdfs-native and the block-location client both log in
    /// from it (a private memory cache, no kinit). On a Kerberized `config` a keytab's
    /// credentials are acquired once here, so that an unreadable keytab or a principal the
    /// keytab lacks is one error before any HDFS call. (The ticket cache is not checked: a
    /// job that touches no HDFS needs no ticket.)
    pub fn use_for_hdfs(&self, config: &yarn::Config) -> anyhow::Result<()> {
        let credentials = self.credentials()?;
        if let KerberosCredentials::Keytab { principal, keytab } = &credentials {
            crate::storage::hdfs::client::use_keytab(principal, keytab)?;
            if config.security_enabled() {
                yarn::check_credentials(&credentials)?;
            }
        }
        Ok(())
    }
}

/// The operator commands; flatten into the binary's top-level subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum OpsCommand {
    /// Inspect the YARN cluster.
    #[command(subcommand)]
    Yarn(YarnCommand),
    /// Show the report of one application.
    Status(StatusArgs),
    /// Kill an application (waits until the ResourceManager confirms).
    Kill(AppArgs),
}

/// `filex yarn …`.
#[derive(Debug, clap::Subcommand)]
pub enum YarnCommand {
    /// List NodeManagers (like `yarn node -list`).
    Nodes(NodesArgs),
    /// List applications (like `yarn application -list`).
    Apps(AppsArgs),
}

/// `filex yarn nodes`.
#[derive(Debug, clap::Args)]
pub struct NodesArgs {
    /// Include nodes in every state, not only RUNNING.
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array of nodes instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hadoop: HadoopArgs,
}

/// `filex yarn apps`.
#[derive(Debug, clap::Args)]
pub struct AppsArgs {
    /// Only applications in this state (repeatable; default SUBMITTED, ACCEPTED, RUNNING).
    #[arg(long = "state", value_name = "STATE")]
    pub states: Vec<String>,
    /// Only applications carrying this tag (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only applications of this type (repeatable), e.g. FILEX.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Every state.
    #[arg(long, conflicts_with = "states")]
    pub all: bool,
    /// Print a JSON array of application reports instead of the table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub hadoop: HadoopArgs,
}

/// `filex status APP_ID` / `filex kill APP_ID`.
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    /// Application id, e.g. application_1700000000000_0001.
    pub app_id: String,
    #[command(flatten)]
    pub hadoop: HadoopArgs,
}

/// `filex status APP_ID`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Print the report as one JSON object (exit 0 whatever the application's state).
    #[arg(long)]
    pub json: bool,
}

/// Runs one operator command.
pub fn run(command: OpsCommand) -> anyhow::Result<ExitCode> {
    let hadoop = match &command {
        OpsCommand::Yarn(YarnCommand::Nodes(a)) => a.hadoop.clone(),
        OpsCommand::Yarn(YarnCommand::Apps(a)) => a.hadoop.clone(),
        OpsCommand::Status(StatusArgs { app: a, .. }) | OpsCommand::Kill(a) => a.hadoop.clone(),
    };
    if let OpsCommand::Status(StatusArgs { app: a, .. }) | OpsCommand::Kill(a) = &command {
        parse_app_id(&a.app_id)?;
    }
    let config = hadoop.conf.load()?;
    let poll = crate::settings::client_poll_interval(&config)?;
    let timeout = Duration::from_secs(hadoop.timeout.max(1));
    let options = IpcOptions::from_config(&config)?
        .with_connect_timeout(timeout.min(Duration::from_secs(10)))
        .with_call_timeout(timeout)
        .with_kerberos(hadoop.kerberos.credentials()?);
    let rm = ApplicationClient::with_options(&config, options)
        .context("cannot set up the ResourceManager client")?;
    let rm_addrs = rm.addresses().join(",");
    let from = config
        .conf_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| "built-in defaults (no Hadoop conf dir found)".into());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async {
        match tokio::time::timeout(timeout, execute(&rm, command, poll)).await {
            Ok(r) => r,
            Err(_) => Err(yarn::Error::Timeout {
                addr: rm.addresses().join(","),
                method: "the command".into(),
                timeout,
            }
            .into()),
        }
    });
    result.with_context(|| format!("ResourceManager at {rm_addrs} (config: {from})"))
}

fn parse_app_id(s: &str) -> anyhow::Result<ApplicationId> {
    s.parse()
        .map_err(|_| anyhow!("{s:?} is not an application id (expected application_<ts>_<n>)"))
}

async fn execute(
    rm: &ApplicationClient,
    command: OpsCommand,
    poll: Duration,
) -> anyhow::Result<ExitCode> {
    let mut out = String::new();
    let code = match command {
        OpsCommand::Yarn(YarnCommand::Nodes(a)) => {
            let states: &[NodeState] = if a.all { &[] } else { &[NodeState::Running] };
            let nodes = rm.get_cluster_nodes(states).await?;
            out.push_str(&if a.json {
                render::nodes_json(&nodes)
            } else {
                render::nodes(&nodes)
            });
            ExitCode::SUCCESS
        }
        OpsCommand::Yarn(YarnCommand::Apps(a)) => {
            let states = if a.all {
                vec![]
            } else if a.states.is_empty() {
                vec![
                    ApplicationState::Submitted,
                    ApplicationState::Accepted,
                    ApplicationState::Running,
                ]
            } else {
                a.states
                    .iter()
                    .map(|s| {
                        s.parse::<ApplicationState>()
                            .map_err(|_| anyhow!("unknown application state {s:?}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let filter = ApplicationFilter {
                types: a.types.clone(),
                states: states.clone(),
                tags: a.tags.clone(),
                ..ApplicationFilter::default()
            };
            let mut apps = rm.get_applications(&filter).await?;
            apps.sort_by_key(|r| r.application_id);
            out.push_str(&if a.json {
                render::apps_json(&apps)
            } else {
                render::apps(&apps, &states, &a.types)
            });
            ExitCode::SUCCESS
        }
        OpsCommand::Status(StatusArgs { app: a, json }) => {
            let id = parse_app_id(&a.app_id)?;
            match rm.get_application_report(id).await {
                Ok(r) => {
                    out.push_str(&if json {
                        render::report_json(&r)
                    } else {
                        render::report(&r)
                    });
                    ExitCode::SUCCESS
                }
                Err(e) if e.remote().is_some_and(|r| r.is_application_not_found()) => {
                    eprintln!("filex: application {id} does not exist");
                    ExitCode::from(exit::NOT_FOUND)
                }
                Err(e) => return Err(e.into()),
            }
        }
        OpsCommand::Kill(a) => {
            let id = parse_app_id(&a.app_id)?;
            let report = match rm.get_application_report(id).await {
                Ok(r) => r,
                Err(e) if e.remote().is_some_and(|r| r.is_application_not_found()) => {
                    eprintln!("filex: application {id} does not exist");
                    return Ok(ExitCode::from(exit::NOT_FOUND));
                }
                Err(e) => return Err(e.into()),
            };
            if report.state.is_terminal() {
                out.push_str(&format!(
                    "Application {id} has already finished ({}, {})\n",
                    report.state, report.final_status
                ));
            } else {
                out.push_str(&format!("Killing application {id}\n"));
                rm.kill_application(
                    id,
                    Some("killed by filex kill"),
                    poll,
                    Duration::from_secs(3600),
                )
                .await?;
                out.push_str(&format!("Killed application {id}\n"));
            }
            ExitCode::SUCCESS
        }
    };
    print!("{out}");
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(principal: Option<&str>, keytab: Option<&str>) -> KerberosArgs {
        KerberosArgs {
            principal: principal.map(str::to_string),
            keytab: keytab.map(Into::into),
        }
    }

    #[test]
    fn principal_and_keytab_come_together() {
        assert_eq!(
            args(None, None).credentials().unwrap(),
            KerberosCredentials::TicketCache
        );
        assert_eq!(
            args(Some("filex@R"), Some("/k")).credentials().unwrap(),
            KerberosCredentials::Keytab {
                principal: "filex@R".into(),
                keytab: "/k".into()
            }
        );
        let e = args(None, Some("/k"))
            .credentials()
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--keytab /k needs --principal"), "{e}");
        let e = args(Some("filex@R"), None)
            .credentials()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--principal filex@R needs --keytab") && e.contains("kinit filex@R"),
            "{e}"
        );
    }
}
