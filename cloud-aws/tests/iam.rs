//! The shipped IAM policies grant exactly the actions the AWS backend calls.
//!
//! The backend names every AWS action it calls when it maps the call's errors
//! (`error::map("Action", ..)`), so the source is the list of calls; ec2:CreateTags is implied by
//! the TagSpecifications on creates.

use std::collections::BTreeSet;

/// Actions AWS requires without the code calling them by name.
const IMPLIED: &[&str] = &["CreateTags"];

fn code_actions() -> BTreeSet<String> {
    let source = include_str!("../src/lib.rs");
    let mut actions: BTreeSet<String> = source
        .split("error::map(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    actions.extend(IMPLIED.iter().map(|a| a.to_string()));
    actions
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
            actions.insert(name.to_string());
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
