//! ELBv2 load balancers (those behind endpoint services, and the network load balancers pld
//! builds in front of application load balancers) and the tags of ELBv2 resources.

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use pld_cloud::{
    Action, CloudError, CloudResult, CreateLoadBalancer, LoadBalancer, LoadBalancerKind, Tags,
};

use crate::error;
use crate::AwsCloud;

impl AwsCloud {
    /// The load balancer's ARN exactly as ELBv2 reports it. The catalog holds the documented
    /// shape (`loadbalancer/net/NAME/ID`); an endpoint that spells its ARNs otherwise (moto writes
    /// `app/` for NLBs) is matched by name and type instead.
    pub(crate) async fn load_balancer_arn_as_reported(&self, arn: &str) -> CloudResult<String> {
        match self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
        {
            Ok(_) => return Ok(arn.to_string()),
            Err(e) => {
                let e = error::map(Action::DescribeLoadBalancers, e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let name = arn.rsplit('/').nth(1).unwrap_or_default();
        let out = self
            .elb
            .describe_load_balancers()
            .names(name)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeLoadBalancers, e))?;
        out.load_balancers()
            .iter()
            .filter(|lb| {
                lb.r#type()
                    .is_some_and(|t| matches!(t.as_str(), "network" | "gateway"))
            })
            .find_map(|lb| lb.load_balancer_arn().map(str::to_string))
            .ok_or_else(|| CloudError::NotFound {
                what: "load balancer",
                id: arn.to_string(),
            })
    }

    pub(crate) async fn describe_load_balancer(&self, arn: &str) -> CloudResult<LoadBalancer> {
        let out = self
            .elb
            .describe_load_balancers()
            .load_balancer_arns(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeLoadBalancers, e))?;
        let lb = out
            .load_balancers()
            .first()
            .ok_or_else(|| CloudError::NotFound {
                what: "load balancer",
                id: arn.to_string(),
            })?;
        self.load_balancer_of(lb).await
    }

    pub(crate) async fn describe_load_balancers(&self) -> CloudResult<Vec<LoadBalancer>> {
        let mut pages = self.elb.describe_load_balancers().into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error::map(Action::DescribeLoadBalancers, e))?;
            for lb in page.load_balancers() {
                out.push(self.load_balancer_of(lb).await?);
            }
        }
        Ok(out)
    }

    async fn load_balancer_of(&self, lb: &elb::LoadBalancer) -> CloudResult<LoadBalancer> {
        let kind = lb
            .r#type()
            .and_then(|t| LoadBalancerKind::parse(t.as_str()))
            .ok_or_else(|| {
                CloudError::Client(format!(
                    "load balancer {} has a type pld does not know: {:?}",
                    lb.load_balancer_arn().unwrap_or_default(),
                    lb.r#type()
                ))
            })?;
        let zones = lb.availability_zones();
        let names: Vec<String> = zones
            .iter()
            .filter_map(|z| z.zone_name().map(str::to_string))
            .collect();
        Ok(LoadBalancer {
            arn: lb.load_balancer_arn().unwrap_or_default().to_string(),
            name: lb.load_balancer_name().unwrap_or_default().to_string(),
            kind,
            internal: lb
                .scheme()
                .is_some_and(|s| s.as_str().eq_ignore_ascii_case("internal")),
            vpc_id: lb.vpc_id().unwrap_or_default().to_string(),
            az_ids: self.az_ids_of(&[], &names).await?,
            subnet_ids: zones
                .iter()
                .filter_map(|z| z.subnet_id().map(str::to_string))
                .collect(),
            state: lb
                .state()
                .and_then(|s| s.code())
                .map(|c| c.as_str().to_string())
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn describe_elb_tags(
        &self,
        arns: &[String],
    ) -> CloudResult<BTreeMap<String, Tags>> {
        let out = self
            .elb
            .describe_tags()
            .set_resource_arns(Some(arns.to_vec()))
            .send()
            .await
            .map_err(|e| error::map(Action::DescribeTags, e))?;
        Ok(out
            .tag_descriptions()
            .iter()
            .filter_map(|d| {
                let tags = d
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_string(),
                            t.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect();
                Some((d.resource_arn()?.to_string(), tags))
            })
            .collect())
    }

    pub(crate) async fn create_load_balancer(
        &self,
        req: &CreateLoadBalancer,
    ) -> CloudResult<LoadBalancer> {
        let out = self
            .elb
            .create_load_balancer()
            .name(&req.name)
            .r#type(elb::LoadBalancerTypeEnum::from(req.kind.as_str()))
            .scheme(if req.internal {
                elb::LoadBalancerSchemeEnum::Internal
            } else {
                elb::LoadBalancerSchemeEnum::InternetFacing
            })
            .set_subnets(Some(req.subnet_ids.clone()))
            .set_tags(Some(elb_tags(&req.tags)))
            .send()
            .await
            .map_err(|e| error::map(Action::CreateLoadBalancer, e))?;
        let lb = out.load_balancers().first().ok_or_else(|| {
            CloudError::Client(format!(
                "CreateLoadBalancer {} answered no load balancer",
                req.name
            ))
        })?;
        self.load_balancer_of(lb).await
    }

    pub(crate) async fn delete_load_balancer(&self, arn: &str) -> CloudResult<()> {
        self.elb
            .delete_load_balancer()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| error::map(Action::DeleteLoadBalancer, e))?;
        Ok(())
    }
}

/// Tags as ELBv2 takes them.
pub(crate) fn elb_tags(tags: &Tags) -> Vec<elb::Tag> {
    tags.iter()
        .map(|(k, v)| elb::Tag::builder().key(k).value(v).build())
        .collect()
}
