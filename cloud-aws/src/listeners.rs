//! ELBv2 listeners: those of an ALB (its ports) and the TCP listeners of the network load
//! balancers pld builds, forwarding to one target group each.

use aws_sdk_elasticloadbalancingv2::types as elb;
use pld_cloud::{Action, CloudError, CloudResult, CreateListener, Listener, Protocol};

use crate::elb::elb_tags;
use crate::error;
use crate::AwsCloud;

fn listener_of(l: &elb::Listener) -> Listener {
    // The default action, when it forwards to one group (a weighted forward to several, a
    // redirect or a fixed response is no single target group).
    let forward = l.default_actions().iter().find_map(|a| {
        let forwards = a
            .r#type()
            .is_some_and(|t| t.as_str().eq_ignore_ascii_case("forward"));
        forwards.then(|| a.target_group_arn()).flatten()
    });
    Listener {
        arn: l.listener_arn().unwrap_or_default().to_string(),
        load_balancer_arn: l.load_balancer_arn().unwrap_or_default().to_string(),
        port: l.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        protocol: Protocol::parse(l.protocol().map(|p| p.as_str()).unwrap_or_default()),
        target_group_arn: forward.map(str::to_string),
    }
}

impl AwsCloud {
    pub(crate) async fn describe_listeners(
        &self,
        load_balancer_arn: &str,
    ) -> CloudResult<Vec<Listener>> {
        let mut pages = self
            .elb
            .describe_listeners()
            .load_balancer_arn(load_balancer_arn)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeListeners, e))?;
            out.extend(page.listeners().iter().map(listener_of));
        }
        Ok(out)
    }

    pub(crate) async fn create_listener(&self, req: &CreateListener) -> CloudResult<Listener> {
        let out = self
            .elb
            .create_listener()
            .load_balancer_arn(&req.load_balancer_arn)
            .protocol(elb::ProtocolEnum::from(req.protocol.as_str()))
            .port(i32::from(req.port))
            .default_actions(
                elb::Action::builder()
                    .r#type(elb::ActionTypeEnum::Forward)
                    .target_group_arn(&req.target_group_arn)
                    .build(),
            )
            .set_tags(Some(elb_tags(&req.tags)))
            .send()
            .await
            .map_err(|e| error::map(Action::CreateListener, e))?;
        out.listeners().first().map(listener_of).ok_or_else(|| {
            CloudError::Client(format!(
                "CreateListener on {} port {} answered no listener",
                req.load_balancer_arn, req.port
            ))
        })
    }

    pub(crate) async fn delete_listener(&self, arn: &str) -> CloudResult<()> {
        self.elb
            .delete_listener()
            .listener_arn(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteListener, e))?;
        Ok(())
    }
}
