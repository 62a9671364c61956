//! Writes: an agent changes only its own VPC's objects, and every binding needs a principal
//! its service allows, whoever writes it.

use pld_proto::v1::{object, Approval, Kind, Object};

use super::fixture::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_touch_only_their_own_vpc() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let a = f.client(
        "agent-a",
        &[&format!("spiffe://pld/agent/{ACCOUNT_A}/{VPC_A}")],
    )?;
    let b = f.client(
        "agent-b",
        &[&format!("spiffe://pld/agent/{ACCOUNT_B}/{VPC_B}")],
    )?;
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;

    // Each agent registers itself and A its services.
    a.put(agent_record(VPC_A, ACCOUNT_A), None).await?;
    b.put(agent_record(VPC_B, ACCOUNT_B), None).await?;
    let allows_b = format!("arn:aws:iam::{ACCOUNT_B}:root");
    a.put(service("alpha", VPC_A, &[&allows_b]), None).await?;
    a.put(service("private", VPC_A, &[]), None).await?;
    report(&a, Kind::Service, "alpha", service_status()).await?;
    keep_alive(&a, VPC_A).await?;

    // Agent records: not another VPC's, not under another account.
    denied(
        b.put(agent_record(VPC_A, ACCOUNT_B), None).await,
        &[VPC_B, "cannot register the agent of vpc-aaaaaaaa"],
    );
    denied(
        b.put(agent_record(VPC_B, ACCOUNT_A), None).await,
        &["cannot register the agent of vpc-bbbbbbbb (account 111111111111)"],
    );
    denied(
        b.delete(Kind::Agent, VPC_A, None).await,
        &["belongs to vpc-aaaaaaaa"],
    );
    denied(
        keep_alive(&b, VPC_A).await,
        &["cannot renew the lease of vpc-aaaaaaaa"],
    );

    // Services: not taking over A's, not registering one for A, not deleting or reporting on A's.
    denied(
        b.put(service("alpha", VPC_B, &["*"]), None).await,
        &["service \"alpha\"", "belongs to vpc-aaaaaaaa"],
    );
    denied(
        b.put(service("beta", VPC_A, &["*"]), None).await,
        &["cannot register service \"beta\" for vpc-aaaaaaaa"],
    );
    denied(
        b.delete(Kind::Service, "alpha", None).await,
        &["belongs to vpc-aaaaaaaa"],
    );
    denied(
        report(&b, Kind::Service, "alpha", service_status()).await,
        &["belongs to vpc-aaaaaaaa"],
    );

    // Bindings: only its own VPC's, only to services that allow its account, never approved by
    // itself.
    denied(
        a.put(binding("alpha", VPC_B, Approval::Unspecified), Some(0))
            .await,
        &["cannot bind vpc-bbbbbbbb"],
    );
    denied(
        b.put(binding("private", VPC_B, Approval::Unspecified), Some(0))
            .await,
        &["account 222222222222 is not among its allowed principals"],
    );
    b.put(binding("alpha", VPC_B, Approval::Unspecified), Some(0))
        .await?;
    denied(
        b.put(binding("alpha", VPC_B, Approval::Accepted), None)
            .await,
        &["cannot approve or reject a binding"],
    );
    let key = pld_core::catalog::binding_key("alpha", VPC_B);
    // The provider's agent neither approves nor reports on the consumer's binding.
    denied(
        a.put(binding("alpha", VPC_B, Approval::Accepted), None)
            .await,
        &["cannot bind vpc-bbbbbbbb"],
    );
    denied(
        report(&a, Kind::Binding, &key, binding_status()).await,
        &["belongs to vpc-bbbbbbbb"],
    );
    // An operator approves; the consumer's agent reports; its own binding it may delete.
    operator
        .put(binding("alpha", VPC_B, Approval::Accepted), None)
        .await?;
    report(&b, Kind::Binding, &key, binding_status()).await?;
    let approved = b.get(Kind::Binding, &key).await?;
    assert!(
        matches!(&approved, Some(Object { object: Some(object::Object::Binding(x)) })
            if x.approval == Approval::Accepted as i32 && x.status.is_some()),
        "{approved:?}"
    );
    // Re-putting its own approved binding unconditionally keeps the approval it may not change.
    b.put(binding("alpha", VPC_B, Approval::Accepted), None)
        .await?;
    b.delete(Kind::Binding, &key, None).await?;

    // Reading is everyone's: the consumer sees the provider's services.
    assert!(b.get(Kind::Service, "alpha").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bindings_need_an_allowed_principal_whoever_writes_them() -> anyhow::Result<()> {
    let f = Fixture::start().await?;
    let admin = f.cluster.client();
    let operator = f.client("operator", &["spiffe://pld/operator/ci"])?;
    admin.put(agent_record(VPC_A, ACCOUNT_A), None).await?;
    admin.put(agent_record(VPC_B, ACCOUNT_B), None).await?;
    admin.put(service("private", VPC_A, &[]), None).await?;
    admin.put(service("open", VPC_A, &["*"]), None).await?;

    // B's account is known from its registered agent, and `private` does not allow it.
    denied(
        operator
            .put(binding("private", VPC_B, Approval::Unspecified), None)
            .await,
        &[
            "binding vpc-bbbbbbbb to service \"private\" refused",
            "222222222222",
        ],
    );
    denied(
        admin
            .put(binding("private", VPC_B, Approval::Unspecified), None)
            .await,
        &["not among its allowed principals"],
    );
    // An unregistered VPC's account is unknown: refused with the reason, unless anyone may bind.
    denied(
        operator
            .put(
                binding("private", "vpc-cccccccc", Approval::Unspecified),
                None,
            )
            .await,
        &["unknown until that VPC's agent registers"],
    );
    operator
        .put(binding("open", "vpc-cccccccc", Approval::Unspecified), None)
        .await?;
    // The provider's own account may always bind; so may a VPC once the service allows it.
    admin
        .put(agent_record("vpc-a2a2a2a2", ACCOUNT_A), None)
        .await?;
    operator
        .put(
            binding("private", "vpc-a2a2a2a2", Approval::Unspecified),
            None,
        )
        .await?;
    admin
        .put(
            service(
                "private",
                VPC_A,
                &[&format!("arn:aws:iam::{ACCOUNT_B}:role/app")],
            ),
            None,
        )
        .await?;
    operator
        .put(binding("private", VPC_B, Approval::Unspecified), None)
        .await?;
    Ok(())
}
