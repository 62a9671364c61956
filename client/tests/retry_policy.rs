//! Which failures the client library tries again: reads and repeatable writes on any
//! UNAVAILABLE, compare-and-sets and deletes only when the failure shows they did not happen —
//! otherwise a repeat of a write that was in fact committed would fail with a mismatch or
//! NOT_FOUND and hide the success. (The nemesis test checks the same policy against real faults.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pld_client::Client;
use pld_proto::v1::catalog_server::{Catalog, CatalogServer};
use pld_proto::v1::{
    DeleteRequest, DeleteResponse, GetRequest, GetResponse, KeepAliveRequest, KeepAliveResponse,
    Kind, ListRequest, ListResponse, Object, PutRequest, PutResponse, ReportStatusRequest,
    ReportStatusResponse,
};
use tonic::metadata::MetadataValue;
use tonic::{Code, Request, Response, Status};

/// Fails the first `failures` calls with `failure`, then succeeds; counts calls.
struct Flaky {
    calls: Arc<AtomicUsize>,
    failures: usize,
    failure: fn() -> Status,
}

impl Flaky {
    fn answer<T: Default>(&self) -> Result<Response<T>, Status> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            Err((self.failure)())
        } else {
            Ok(Response::new(T::default()))
        }
    }
}

#[tonic::async_trait]
impl Catalog for Flaky {
    async fn put(&self, _: Request<PutRequest>) -> Result<Response<PutResponse>, Status> {
        self.answer()
    }
    async fn get(&self, _: Request<GetRequest>) -> Result<Response<GetResponse>, Status> {
        self.answer()
    }
    async fn list(&self, _: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        self.answer()
    }
    async fn delete(&self, _: Request<DeleteRequest>) -> Result<Response<DeleteResponse>, Status> {
        self.answer()
    }
    async fn report_status(
        &self,
        _: Request<ReportStatusRequest>,
    ) -> Result<Response<ReportStatusResponse>, Status> {
        self.answer()
    }
    async fn keep_alive(
        &self,
        _: Request<KeepAliveRequest>,
    ) -> Result<Response<KeepAliveResponse>, Status> {
        self.answer()
    }
}

/// A commit that timed out: it may have happened.
fn outcome_unknown() -> Status {
    Status::unavailable("not committed within 5s; the outcome is unknown")
}

/// Refused before proposing: it did not happen.
fn not_proposed() -> Status {
    let mut s = Status::unavailable("no raft leader is known");
    s.metadata_mut().insert(
        pld_proto::metadata::NOT_PROPOSED,
        MetadataValue::from_static("1"),
    );
    s
}

async fn serve(failures: usize, failure: fn() -> Status) -> (Client, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = CatalogServer::new(Flaky {
        calls: calls.clone(),
        failures,
        failure,
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let client = Client::new(&[addr.to_string()])
        .unwrap()
        .with_deadline(Duration::from_secs(5));
    (client, calls)
}

fn object() -> Object {
    Object::default()
}

#[tokio::test]
async fn a_compare_and_set_whose_outcome_is_unknown_is_not_repeated() {
    let (client, calls) = serve(1, outcome_unknown).await;
    let err = client.put(object(), Some(7)).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.to_string().contains("outcome is unknown"), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_delete_whose_outcome_is_unknown_is_not_repeated() {
    let (client, calls) = serve(1, outcome_unknown).await;
    client.delete(Kind::Service, "a", None).await.unwrap_err();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_compare_and_set_refused_before_proposing_is_repeated() {
    let (client, calls) = serve(2, not_proposed).await;
    client.put(object(), Some(7)).await.unwrap();
    client.delete(Kind::Service, "a", Some(7)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn reads_and_unconditional_puts_are_repeated_on_any_unavailable() {
    let (client, calls) = serve(2, outcome_unknown).await;
    client.get(Kind::Service, "a").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    client.put(object(), None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_refused_connection_counts_as_not_executed() {
    // Bind and drop: nothing listens on the port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(&[format!("127.0.0.1:{port}")]).unwrap();
    let err = client
        .stubs()
        .catalog()
        .put(PutRequest::default())
        .await
        .unwrap_err();
    assert!(pld_client::not_executed(&err), "{err:?}");
    assert!(!pld_client::not_executed(&outcome_unknown()));
    assert!(pld_client::not_executed(&not_proposed()));
}
