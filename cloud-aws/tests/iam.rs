//! The shipped IAM policies grant exactly the actions the AWS backend calls.
//!
//! Every operation is a [`pld_cloud::Action`], which knows its IAM action, and the backend
//! names the one it calls when it maps the call's errors (`error::map(Action::X, ..)`), so its
//! sources are the list of calls; ec2:CreateTags is implied by the TagSpecifications on creates,
//! elasticloadbalancing:AddTags by the Tags on ELBv2 creates.

use std::collections::BTreeSet;

use pld_cloud::Action;

/// IAM actions AWS requires without the code calling them by name.
const IMPLIED: &[&str] = &["ec2:CreateTags", "elasticloadbalancing:AddTags"];

/// The actions the backend's sources name, read from the source tree so a file added later
/// counts. An `Action::X` that is not an action fails the test.
fn backend_actions() -> BTreeSet<Action> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut actions = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the backend's sources") {
        let path = entry.expect("a directory entry").path();
        let source = std::fs::read_to_string(&path).expect("a source file");
        for (at, _) in source.match_indices("Action::") {
            // `ChangeAction::Upsert` and the like are other enums, and so is a qualified
            // `elb::Action::builder()` (the SDK's listener action).
            let before = source[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let name: String = source[at + "Action::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if name.is_empty() || name == "ALL" {
                continue;
            }
            let action = Action::named(&name).unwrap_or_else(|| {
                panic!(
                    "{} names Action::{name}, which is no action",
                    path.display()
                )
            });
            actions.insert(action);
        }
    }
    actions
}

fn code_actions() -> BTreeSet<String> {
    let mut actions: BTreeSet<String> = backend_actions().iter().map(|a| a.iam_action()).collect();
    actions.extend(IMPLIED.iter().map(|a| a.to_string()));
    actions
}

#[test]
fn the_backend_calls_every_declared_action() {
    let called = backend_actions();
    let unused: Vec<&Action> = Action::ALL.iter().filter(|a| !called.contains(a)).collect();
    assert!(
        unused.is_empty(),
        "declared but never called by the AWS backend: {unused:?}"
    );
}

fn policy_actions(text: &str) -> anyhow::Result<BTreeSet<String>> {
    let policy: serde_json::Value = serde_json::from_str(text)?;
    anyhow::ensure!(policy["Version"] == "2012-10-17", "policy version");
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no statements"))?
    {
        anyhow::ensure!(statement["Effect"] == "Allow");
        let list = match &statement["Action"] {
            serde_json::Value::String(a) => vec![a.clone()],
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            other => anyhow::bail!("bad Action {other}"),
        };
        for action in list {
            let (_, name) = action
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("{action} has no service"))?;
            anyhow::ensure!(
                !name.contains('*'),
                "{action}: no wildcards in least privilege"
            );
            actions.insert(action);
        }
    }
    Ok(actions)
}

#[test]
fn the_policies_grant_exactly_what_the_backend_calls() -> anyhow::Result<()> {
    let provider = policy_actions(include_str!("../../deploy/iam/pld-agent-provider.json"))?;
    let consumer = policy_actions(include_str!("../../deploy/iam/pld-agent-consumer.json"))?;
    let granted: BTreeSet<String> = provider.union(&consumer).cloned().collect();
    let called = code_actions();
    let missing: Vec<&String> = called.difference(&granted).collect();
    let unused: Vec<&String> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "the code calls actions no policy grants: {missing:?}"
    );
    assert!(
        unused.is_empty(),
        "the policies grant actions the code never calls: {unused:?}"
    );
    Ok(())
}
