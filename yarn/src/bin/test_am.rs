//! A minimal in-cluster ApplicationMaster used by the crate's cluster tests
//! (built only with the `integration-test` feature). It reads its container
//! environment and AMRMToken, registers with the scheduler address from
//! `HADOOP_CONF_DIR`, optionally runs one container with the command given
//! as arguments, and finishes SUCCEEDED (or FAILED when anything fails).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use yarn::{
    AmRmClient, Config, ContainerEnvironment, ContainerLaunchContext, ContainerRequest,
    FinalApplicationStatus, IpcOptions, NmClient, Resource,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test AM failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> yarn::Result<()> {
    let env = ContainerEnvironment::from_env()?;
    let creds = env
        .credentials()?
        .ok_or_else(|| yarn::Error::MissingToken {
            kind: yarn::credentials::AM_RM_TOKEN_KIND.into(),
            service: None,
        })?;
    let token = creds.am_rm_token()?.clone();
    let attempt = yarn::ApplicationAttemptId::of_am_rm_token(&token)?;
    if attempt != env.attempt_id() {
        eprintln!(
            "token attempt {attempt} differs from CONTAINER_ID attempt {}",
            env.attempt_id()
        );
    }
    let config = Config::load(None)?;
    let am = AmRmClient::new(&config, token)?;
    am.register_application_master(&env.nm_host, -1, "").await?;
    let command: Vec<String> = std::env::args().skip(1).collect();
    let outcome = run_container(&am, &command).await;
    let (status, diag) = match &outcome {
        Ok(()) => (
            FinalApplicationStatus::Succeeded,
            format!("attempt {attempt} done"),
        ),
        Err(e) => (FinalApplicationStatus::Failed, e.to_string()),
    };
    am.finish_application_master(status, &diag, "").await?;
    outcome
}

async fn run_container(am: &AmRmClient, command: &[String]) -> yarn::Result<()> {
    if command.is_empty() {
        am.allocate(1.0).await?;
        return Ok(());
    }
    am.add_container_request(ContainerRequest::any(Resource::new(128, 1), 1))
        .await;
    let nm = NmClient::new(IpcOptions::default());
    let launch = ContainerLaunchContext {
        commands: command.to_vec(),
        ..ContainerLaunchContext::default()
    };
    let start = Instant::now();
    let mut started = None;
    while start.elapsed() < Duration::from_secs(120) {
        let r = am.allocate(0.5).await?;
        for a in r.allocated {
            let token = am.nm_token(&a.container.node_id).await.ok_or_else(|| {
                yarn::Error::MissingToken {
                    kind: yarn::credentials::NM_TOKEN_KIND.into(),
                    service: Some(a.container.node_id.to_string()),
                }
            })?;
            nm.start_container(&a.container, &token, &launch).await?;
            started = Some(a.container.id);
        }
        for s in r.completed {
            if Some(s.container_id) == started {
                return if s.exit_status == 0 {
                    Ok(())
                } else {
                    Err(yarn::Error::Unexpected {
                        addr: String::new(),
                        method: "container".into(),
                        message: format!("exit status {}: {}", s.exit_status, s.diagnostics),
                    })
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Err(yarn::Error::Unexpected {
        addr: String::new(),
        method: "container".into(),
        message: "container did not complete in 120s".into(),
    })
}
