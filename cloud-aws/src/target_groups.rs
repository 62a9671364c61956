//! ELBv2 target groups, their targets and their targets' health.

use aws_sdk_elasticloadbalancingv2::types as elb;
use pld_cloud::{
    Action, CloudError, CloudResult, CreateTargetGroup, HealthCheck, Protocol, TargetGroup,
    TargetHealth, TargetType,
};

use crate::elb::elb_tags;
use crate::error;
use crate::AwsCloud;

fn group_of(g: &elb::TargetGroup) -> CloudResult<TargetGroup> {
    let arn = g.target_group_arn().unwrap_or_default().to_string();
    let target_type = g
        .target_type()
        .and_then(|t| TargetType::parse(t.as_str()))
        .ok_or_else(|| {
            CloudError::Client(format!(
                "target group {arn} has a target type pld does not know: {:?}",
                g.target_type()
            ))
        })?;
    Ok(TargetGroup {
        name: g.target_group_name().unwrap_or_default().to_string(),
        target_type,
        protocol: Protocol::parse(g.protocol().map(|p| p.as_str()).unwrap_or_default()),
        port: g.port().and_then(|p| u16::try_from(p).ok()).unwrap_or(0),
        vpc_id: g.vpc_id().unwrap_or_default().to_string(),
        health_check: HealthCheck {
            protocol: Protocol::parse(
                g.health_check_protocol()
                    .map(|p| p.as_str())
                    .unwrap_or_default(),
            ),
            path: g.health_check_path().unwrap_or_default().to_string(),
            matcher: g
                .matcher()
                .and_then(|m| m.http_code())
                .unwrap_or_default()
                .to_string(),
        },
        load_balancer_arns: g.load_balancer_arns().to_vec(),
        arn,
    })
}

impl AwsCloud {
    pub(crate) async fn describe_target_groups(
        &self,
        load_balancer_arn: Option<&str>,
    ) -> CloudResult<Vec<TargetGroup>> {
        let mut pages = self
            .elb
            .describe_target_groups()
            .set_load_balancer_arn(load_balancer_arn.map(str::to_string))
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeTargetGroups, e))?;
            for g in page.target_groups() {
                out.push(group_of(g)?);
            }
        }
        Ok(out)
    }

    pub(crate) async fn create_target_group(
        &self,
        req: &CreateTargetGroup,
    ) -> CloudResult<TargetGroup> {
        let out = self
            .elb
            .create_target_group()
            .name(&req.name)
            .target_type(elb::TargetTypeEnum::from(req.target_type.as_str()))
            .protocol(elb::ProtocolEnum::from(req.protocol.as_str()))
            .port(i32::from(req.port))
            .vpc_id(&req.vpc_id)
            .health_check_protocol(elb::ProtocolEnum::from(req.health_check.protocol.as_str()))
            .health_check_path(&req.health_check.path)
            .matcher(
                elb::Matcher::builder()
                    .http_code(&req.health_check.matcher)
                    .build(),
            )
            .set_tags(Some(elb_tags(&req.tags)))
            .send()
            .await
            .map_err(|e| error::map(Action::CreateTargetGroup, e))?;
        let group = out.target_groups().first().ok_or_else(|| {
            CloudError::Client(format!(
                "CreateTargetGroup {} answered no target group",
                req.name
            ))
        })?;
        group_of(group)
    }

    pub(crate) async fn modify_target_group_health(
        &self,
        arn: &str,
        check: &HealthCheck,
    ) -> CloudResult<TargetGroup> {
        let out = self
            .elb
            .modify_target_group()
            .target_group_arn(arn)
            .health_check_protocol(elb::ProtocolEnum::from(check.protocol.as_str()))
            .health_check_path(&check.path)
            .matcher(elb::Matcher::builder().http_code(&check.matcher).build())
            .send()
            .await
            .map_err(|e| error::map(Action::ModifyTargetGroup, e))?;
        let group = out.target_groups().first().ok_or_else(|| {
            CloudError::Client(format!("ModifyTargetGroup {arn} answered no target group"))
        })?;
        group_of(group)
    }

    pub(crate) async fn delete_target_group(&self, arn: &str) -> CloudResult<()> {
        self.elb
            .delete_target_group()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteTargetGroup, e))?;
        Ok(())
    }

    pub(crate) async fn register_targets(
        &self,
        target_group_arn: &str,
        target_ids: &[String],
    ) -> CloudResult<()> {
        self.elb
            .register_targets()
            .target_group_arn(target_group_arn)
            .set_targets(Some(
                target_ids
                    .iter()
                    .map(|id| elb::TargetDescription::builder().id(id).build())
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| error::map(Action::RegisterTargets, e))?;
        Ok(())
    }

    pub(crate) async fn describe_target_health(
        &self,
        target_group_arn: &str,
    ) -> CloudResult<Vec<TargetHealth>> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(target_group_arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeTargetHealth, e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(|d| TargetHealth {
                target_id: d
                    .target()
                    .and_then(|t| t.id())
                    .unwrap_or_default()
                    .to_string(),
                port: d
                    .target()
                    .and_then(|t| t.port())
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(0),
                state: d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: d
                    .target_health()
                    .and_then(|h| h.reason())
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect())
    }
}
