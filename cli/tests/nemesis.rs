//! Real controller processes in network namespaces under a nemesis (kills, freezes, partitions,
//! slow links), with concurrent clients; the history must be linearizable, every watcher must
//! see every revision once and in order, and the run must have done work. A third run checks the
//! checker: with stale reads, it must find the history not linearizable. See
//! `pld_tests::nemesis`.
//!
//! Needs root for the namespaces; elsewhere each test reports `ignored, <why>` (never a pass),
//! and `.ci/run` sets PLD_REQUIRE_ROOT_TESTS=1 to make that a failure. `PLD_NEMESIS_SECONDS=600`
//! runs the long mode by hand; `PLD_NEMESIS_SEED` replays a schedule.

use std::path::Path;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use pld_tests::nemesis::{run, Scenario};
use pld_tests::Setup;

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

/// Runs `scenario`: passed with its report printed, ignored saying why it could not run here,
/// or failed with the whole chain of why.
fn nemesis(scenario: anyhow::Result<Scenario>) -> Result<Completion, Failed> {
    let ran = scenario.and_then(|s| run(pld(), s));
    match ran.map_err(|e| Failed::from(format!("{e:?}")))? {
        Setup::Ready(report) => {
            eprintln!("{report}");
            Ok(Completion::Completed)
        }
        Setup::Skip(why) => Ok(Completion::ignored_with(why)),
    }
}

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // One cluster at a time: two at once on a small machine would mostly test the scheduler.
    args.test_threads = Some(1);
    let trials = vec![
        Trial::ignorable_test("three_nodes_stay_linearizable_under_faults", || {
            nemesis(Scenario::from_env(3, 30))
        }),
        Trial::ignorable_test("five_nodes_stay_linearizable_under_faults", || {
            nemesis(Scenario::from_env(5, 30))
        }),
        Trial::ignorable_test("the_checker_catches_stale_reads", || {
            nemesis(Scenario::stale_reads(3, 15))
        }),
    ];
    libtest_mimic::run(&args, trials).exit_code()
}
