//! `pld cost`'s bad input, as a user meets it: the documented exit codes and a message naming
//! what is wrong, before any controller is asked. (Its figures are checked against hand-worked
//! values in pld-core's cost tests, and against `pld dev` in dev.rs.)

use std::path::Path;
use std::process::{Command, Output};

fn pld() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pld"))
}

fn cost(args: &[&str]) -> anyhow::Result<Output> {
    // No controller listens on port 9: the input is refused before anything is dialled.
    Ok(Command::new(pld())
        .args(["--controller", "127.0.0.1:9", "--timeout", "2", "cost"])
        .args(args)
        .env("PLD_LOG", "off")
        .output()?)
}

fn says(o: &Output, code: i32, words: &[&str]) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(code), "{text}");
    for w in words {
        assert!(text.contains(w), "{w:?} missing from: {text}");
    }
}

#[test]
fn bad_cost_input_is_named_with_its_exit_code() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = |name: &str, text: &str| -> anyhow::Result<String> {
        let path = dir.path().join(name);
        std::fs::write(&path, text)?;
        Ok(path.display().to_string())
    };
    // A file that is not there: a failure to read (1), naming the file.
    let missing = dir.path().join("nope.toml").display().to_string();
    says(&cost(&["--prices", &missing])?, 1, &["nope.toml"]);
    // A price that is not a price: invalid (6), naming the entry.
    let negative = file("neg.toml", "[regions.us-east-1.nlb_hour]\nusd = -0.5\n")?;
    says(
        &cost(&["--prices", &negative])?,
        6,
        &["--prices", "regions.us-east-1.nlb_hour", "0 or more"],
    );
    // An item pld does not know: invalid, naming it.
    let unknown = file("unknown.toml", "[regions.us-east-1.nlb_hourz]\nusd = 1\n")?;
    says(&cost(&["--prices", &unknown])?, 6, &["nlb_hourz"]);
    // Not TOML at all.
    let garbage = file("garbage.toml", "this is = = not toml")?;
    says(&cost(&["--prices", &garbage])?, 6, &["garbage.toml"]);
    // A negative volume: invalid; a word: clap's bad command line (2).
    says(&cost(&["--gb-per-month=-1"])?, 6, &["--gb-per-month"]);
    says(&cost(&["--gb-per-month", "lots"])?, 2, &["--gb-per-month"]);
    // Good input gets as far as the controller, which is not there: unavailable (5).
    let good = file("good.toml", "[traffic]\ngb_per_month = 10\n")?;
    says(&cost(&["--prices", &good])?, 5, &[]);
    Ok(())
}
