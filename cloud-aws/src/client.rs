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
    pub(crate) quotas: aws_sdk_servicequotas::Client,
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
            quotas: aws_sdk_servicequotas::Client::new(&config),
            az_ids: OnceCell::new(),
        })
    }

    /// A backend over clients built elsewhere (custom HTTP settings, interceptors, tests).
    pub fn with_clients(account: &str, region: &str, clients: SdkClients) -> Self {
        AwsCloud {
            account: account.to_string(),
            region: region.to_string(),
            ec2: clients.ec2,
            elb: clients.elb,
            r53: clients.r53,
            quotas: clients.quotas,
            az_ids: OnceCell::new(),
        }
    }
}

/// One SDK client per service the backend calls, for [`AwsCloud::with_clients`].
pub struct SdkClients {
    pub ec2: aws_sdk_ec2::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub r53: aws_sdk_route53::Client,
    pub quotas: aws_sdk_servicequotas::Client,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use pld_cloud::limiter::{Limited, Limiter};
    use pld_cloud::Cloud;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// EC2's answer to a call that failed on its side (EC2 API reference, "Error codes":
    /// InternalError, a 500 the caller should retry).
    const FAILED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
        <Code>InternalError</Code><Message>An internal error has occurred.</Message></Error>\
        </Errors><RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>";

    /// Reads one HTTP request (headers and a Content-Length body) off `sock`.
    async fn read_request(sock: &mut tokio::net::TcpStream) -> bool {
        let mut have = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            have.extend_from_slice(&buf[..n]);
            let Some(end) = have.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let headers = String::from_utf8_lossy(&have[..end]).to_ascii_lowercase();
            let body = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if have.len() >= end + 4 + body {
                return true;
            }
        }
    }

    /// An endpoint on loopback that fails every request, and how many it has seen.
    async fn failing_endpoint() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    if !read_request(&mut sock).await {
                        return;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    let answer = format!(
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml;charset=UTF-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{FAILED}",
                        FAILED.len()
                    );
                    let _ = sock.write_all(answer.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (url, seen)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_call_is_retried_by_one_layer_only() {
        // Throttling would show the same (both are retryable, and both were retried four times
        // inside four), but the SDK's adaptive mode then slows its own sending for a minute.
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        let (url, requests) = failing_endpoint().await;
        let settings = AwsSettings {
            region: "us-east-1".into(),
            endpoint_url: Some(url),
            assume_role_arn: None,
        };
        let cloud = AwsCloud::connect("123456789012", &settings)
            .await
            .expect("a backend");
        let limited = Limited::new(cloud, Limiter::new(None));
        let result = limited.describe_vpc("vpc-0a1b2c3d").await;
        assert!(
            matches!(result, Err(CloudError::Transient(_))),
            "{result:?}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            4,
            "the SDK's four attempts, with no second layer around them"
        );
        let stats = limited.call_stats().expect("counted");
        assert_eq!(stats.calls.get("DescribeVpcs"), Some(&(0, 1)));
    }
}
