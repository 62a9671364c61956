//! Real controller processes in network namespaces under a nemesis (kills, freezes, partitions,
//! slow links), with concurrent clients; the history must be linearizable and every watcher must
//! see every change once and in order. See `pld_tests::nemesis`.
//!
//! Needs root for the namespaces; without it the test says so and passes, and `.ci/run` sets
//! PLD_REQUIRE_ROOT_TESTS=1 to make that a failure. `PLD_NEMESIS_SECONDS=600` runs the long
//! mode by hand; `PLD_NEMESIS_SEED` replays a schedule.

use std::path::Path;
use std::sync::Mutex;

use pld_tests::nemesis::{run, Scenario};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// One cluster at a time: two at once on a small machine would mostly test the scheduler.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn nemesis(nodes: u64) -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let scenario = Scenario::from_env(nodes, 30)?;
    if let Some(report) = run(pld(), scenario)? {
        eprintln!("{report}");
    }
    Ok(())
}

#[test]
fn three_nodes_stay_linearizable_under_faults() -> anyhow::Result<()> {
    nemesis(3)
}

#[test]
fn five_nodes_stay_linearizable_under_faults() -> anyhow::Result<()> {
    nemesis(5)
}
