//! How the backend reaches AWS: settings, credentials, and one SDK client per service.

use std::collections::HashMap;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use pld_cloud::{CloudError, CloudResult};
use tokio::sync::OnceCell;

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    pub region: String,
    /// Send every call here instead of AWS's public endpoints.
    pub endpoint_url: Option<String>,
    /// Assume this role for every call.
    pub assume_role_arn: Option<String>,
}

/// One account's view of one region, through the SDK.
pub struct AwsCloud {
    pub(crate) account: String,
    pub(crate) region: String,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) r53: aws_sdk_route53::Client,
    /// AZ name → AZ ID for this account, read once ([`crate::az`]).
    pub(crate) az_ids: OnceCell<HashMap<String, String>>,
}

impl AwsCloud {
    /// Clients for `account` with `settings`.
    ///
    /// # Errors
    /// When the region is empty.
    pub async fn connect(account: &str, settings: &AwsSettings) -> CloudResult<Self> {
        if settings.region.is_empty() {
            return Err(CloudError::Client("region is required".into()));
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .retry_config(RetryConfig::adaptive().with_max_attempts(4));
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let mut config = loader.load().await;
        if let Some(role) = &settings.assume_role_arn {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name("pld-agent")
                .configure(&config)
                .build()
                .await;
            config = config
                .into_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build();
        }
        Ok(AwsCloud {
            account: account.to_string(),
            region: settings.region.clone(),
            ec2: aws_sdk_ec2::Client::new(&config),
            elb: aws_sdk_elasticloadbalancingv2::Client::new(&config),
            r53: aws_sdk_route53::Client::new(&config),
            az_ids: OnceCell::new(),
        })
    }

    /// A backend over clients built elsewhere (custom HTTP settings, interceptors, tests).
    pub fn with_clients(
        account: &str,
        region: &str,
        ec2: aws_sdk_ec2::Client,
        elb: aws_sdk_elasticloadbalancingv2::Client,
        r53: aws_sdk_route53::Client,
    ) -> Self {
        AwsCloud {
            account: account.to_string(),
            region: region.to_string(),
            ec2,
            elb,
            r53,
            az_ids: OnceCell::new(),
        }
    }
}
