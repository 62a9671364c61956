//! The systemd units in deploy/systemd: `systemd-analyze verify` accepts them, they carry the
//! hardening the install guide promises, and `pld controller` speaks the notify protocol they
//! rely on (READY, watchdog pings, RELOADING on SIGHUP, STOPPING on SIGTERM).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use pld_tests::systemd::{signal, wait_exit, NotifySocket};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(deploy(&format!("systemd/{name}")))
        .unwrap_or_else(|e| panic!("deploy/systemd/{name}: {e}"))
}

/// `systemd-analyze`, or None when this machine has none and the run does not require it
/// (`.ci/run` installs it and sets PLD_REQUIRE_SYSTEMD_ANALYZE=1).
fn systemd_analyze() -> Option<&'static str> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("systemd-analyze");
    }
    assert!(
        std::env::var_os("PLD_REQUIRE_SYSTEMD_ANALYZE").is_none(),
        "PLD_REQUIRE_SYSTEMD_ANALYZE is set but systemd-analyze is missing (apt-get install systemd)"
    );
    eprintln!("skipping: systemd-analyze is not installed");
    None
}

#[test]
fn the_units_pass_systemd_analyze_verify() -> anyhow::Result<()> {
    let Some(analyze) = systemd_analyze() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    // verify checks that ExecStart exists, so point it at the binary under test.
    let binary = pld().to_string_lossy().to_string();
    let controller = unit("pld-controller.service").replace("/usr/local/bin/pld", &binary);
    let agent = unit("pld-agent.service").replace("/usr/local/bin/pld", &binary);
    // The credentials drop-in, checked as part of the unit it extends.
    let with_credentials = format!(
        "{agent}\n{}",
        unit("pld-agent.service.d/aws-credentials.conf")
    );
    let files = [
        ("pld-controller.service", controller),
        ("pld-agent.service", agent),
        ("pld-agent-credentials.service", with_credentials),
    ];
    for (name, text) in &files {
        std::fs::write(dir.path().join(name), text)?;
    }
    let out = Command::new(analyze)
        .arg("verify")
        .args(files.iter().map(|(name, _)| dir.path().join(name)))
        .current_dir(dir.path())
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze verify warned:\n{stderr}"
    );
    Ok(())
}

/// The `Key=value` lines of a unit.
fn keys(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_units_are_hardened_notify_services_under_their_own_user() {
    for name in ["pld-controller.service", "pld-agent.service"] {
        let keys = keys(&unit(name));
        let has = |k: &str, v: &str| keys.iter().any(|(kk, vv)| kk == k && vv == v);
        for (k, v) in [
            ("Type", "notify"),
            ("WatchdogSec", "30s"),
            ("User", "pld"),
            ("Restart", "on-failure"),
            ("ProtectSystem", "strict"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", ""),
            ("AmbientCapabilities", ""),
            ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
            ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ] {
            assert!(has(k, v), "{name} lacks {k}={v}");
        }
    }
    let controller = keys(&unit("pld-controller.service"));
    assert!(controller.contains(&("StateDirectory".into(), "pld".into())));
    let credentials = keys(&unit("pld-agent.service.d/aws-credentials.conf"));
    assert!(credentials
        .iter()
        .any(|(k, v)| k == "LoadCredential" && v.starts_with("aws-credentials:")));
    assert!(credentials.contains(&(
        "Environment".into(),
        "AWS_SHARED_CREDENTIALS_FILE=%d/aws-credentials".into()
    )));
}

#[test]
fn the_controller_speaks_the_notify_protocol() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let notify = NotifySocket::bind(dir.path())?;
    let port = pld_tests::free_port()?;
    let config = dir.path().join("controller.toml");
    let write_config = |log: &str| {
        std::fs::write(
            &config,
            format!(
                "id = 1\ndata_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nlog = {log:?}\ninsecure = true\n",
                dir.path().join("data")
            ),
        )
    };
    write_config("info")?;
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(pld())
        .args(["controller", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", notify.path())
        .env("WATCHDOG_USEC", "200000")
        .env_remove("PLD_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path)?)
        .spawn()?;
    let result = (|| -> anyhow::Result<()> {
        let ready = notify.expect("READY=1", Duration::from_secs(20))?;
        assert!(
            ready.contains(&format!("STATUS=node 1 serving on 127.0.0.1:{port}")),
            "{ready}"
        );
        // Two pings in a row: they keep coming at half the 200 ms interval.
        notify.expect("WATCHDOG=1", Duration::from_secs(2))?;
        notify.expect("WATCHDOG=1", Duration::from_secs(2))?;

        write_config("debug")?;
        signal(child.id(), "HUP")?;
        let reloading = notify.expect("RELOADING=1", Duration::from_secs(5))?;
        assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
        notify.expect("READY=1", Duration::from_secs(5))?;
        let log = std::fs::read_to_string(&log_path)?;
        assert!(log.contains("log filter changed"), "{log}");

        signal(child.id(), "TERM")?;
        notify.expect("STOPPING=1", Duration::from_secs(5))?;
        Ok(())
    })();
    let code = wait_exit(&mut child, Duration::from_secs(15))?;
    result?;
    assert_eq!(code, Some(0), "{}", std::fs::read_to_string(&log_path)?);
    Ok(())
}
