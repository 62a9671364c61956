//! `pld agent` as systemd runs it, against moto as its AWS: READY once registered, watchdog
//! pings, SIGHUP re-registering the provided services the config now lists, `/readyz`, JSON logs,
//! and a clean stop. Skipped (with a message) when moto is not installed; `.ci/run` requires it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use pld_cloud_aws::testing::{start_moto, vpc_with_nlb, ACCOUNT, REGION};
use pld_tests::cluster::{fast_tuning, TestCluster};
use pld_tests::objects::get_service;
use pld_tests::systemd::{signal, wait_exit, NotifySocket};
use pld_tests::{free_port, http_get, wait_until};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

struct Setup<'a> {
    controller: String,
    vpc: &'a str,
    nlb: &'a str,
    moto: &'a str,
    listen: u16,
    dns: u16,
}

fn config(s: &Setup<'_>, services: &[&str], log: &str) -> String {
    let mut text = format!(
        r#"account_id = "{ACCOUNT}"
region = "{REGION}"
vpc_id = "{vpc}"
controllers = ["{controller}"]
cloud = "aws"
listen = "127.0.0.1:{listen}"
dns_listen = "127.0.0.1:{dns}"
resync_seconds = 2
log = "{log}"
insecure = true
[aws]
endpoint_url = "{moto}"
[dns]
zone = "pld.moto"
"#,
        vpc = s.vpc,
        controller = s.controller,
        listen = s.listen,
        dns = s.dns,
        moto = s.moto,
    );
    for name in services {
        text.push_str(&format!(
            "[[services]]\nname = \"{name}\"\nload_balancer_arn = \"{}\"\nports = [443]\n",
            s.nlb
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_notifies_systemd_and_reloads_its_services_on_sighup() -> anyhow::Result<()> {
    let Some(moto) = start_moto()? else {
        return Ok(());
    };
    let (vpc, nlb) = vpc_with_nlb(
        &moto.url,
        "10.0.0.0/16",
        ["10.0.1.0/24", "10.0.2.0/24"],
        "web",
    )
    .await?;
    let cluster = TestCluster::start(1, fast_tuning()).await?;
    cluster.wait_leader(&[1]).await?;
    let client = cluster.client();
    let setup = Setup {
        controller: cluster
            .controller(1)
            .expect("node 1")
            .local_addr()
            .to_string(),
        vpc: &vpc,
        nlb: &nlb,
        moto: &moto.url,
        listen: free_port()?,
        dns: free_port()?,
    };
    let dir = tempfile::tempdir()?;
    let notify = NotifySocket::bind(dir.path())?;
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, config(&setup, &["alpha"], "info"))?;
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(pld())
        .args(["agent", "--config"])
        .arg(&path)
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "400000")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("PLD_LOG")
        .env("PLD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let agent_addr = format!("127.0.0.1:{}", setup.listen).parse()?;

    let steps = async {
        let ready = notify.expect("READY=1", Duration::from_secs(30))?;
        assert!(
            ready.contains(&format!("STATUS=agent of {vpc} serving on")),
            "{ready}"
        );
        // READY means registered: the service is in the catalog already.
        assert!(get_service(&client, "alpha", false).await?.is_some());
        notify.expect("WATCHDOG=1", Duration::from_secs(3))?;
        wait_until(Duration::from_secs(20), "the agent to be ready", || async {
            (http_get(agent_addr, "/readyz").await.ok()?.0 == 200).then_some(())
        })
        .await?;

        std::fs::write(&path, config(&setup, &["beta"], "debug"))?;
        signal(child.id(), "HUP")?;
        notify.expect("RELOADING=1", Duration::from_secs(5))?;
        notify.expect("READY=1", Duration::from_secs(10))?;
        wait_until(
            Duration::from_secs(10),
            "beta registered and alpha gone",
            || async {
                let beta = get_service(&client, "beta", false).await.ok()??;
                get_service(&client, "alpha", false)
                    .await
                    .ok()?
                    .is_none()
                    .then_some(beta)
            },
        )
        .await?;
        let log = std::fs::read_to_string(&log_path)?;
        assert!(log.contains("log filter changed"), "{log}");
        // PLD_LOG_FORMAT=json: every line is one JSON object, as journald/log shippers want.
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| anyhow::anyhow!("not a JSON log line ({e}): {line}"))?;
            // Every line has a level and its fields. Our own events always say something;
            // a dependency's (the AWS SDK's debug events, say) may carry fields alone.
            assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
            let ours = v["target"].as_str().is_some_and(|t| t.starts_with("pld"));
            assert!(!ours || v["fields"]["message"].is_string(), "{line}");
        }

        signal(child.id(), "TERM")?;
        notify.expect("STOPPING=1", Duration::from_secs(5))?;
        anyhow::Ok(())
    };
    let result = steps.await;
    let code = wait_exit(&mut child, Duration::from_secs(15))?;
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    result.map_err(|e| anyhow::anyhow!("{e}\nagent stderr:\n{log}"))?;
    assert_eq!(code, Some(0), "{log}");
    cluster.shutdown().await;
    Ok(())
}
