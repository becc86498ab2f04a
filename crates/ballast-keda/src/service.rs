//! The gRPC service KEDA calls, and the server that runs it.

use std::future::Future;
use std::pin::Pin;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use crate::board::{KedaBoard, Published};
use crate::metric::{METRIC_TARGET, metric_name, metric_value};
use crate::proto::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use crate::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};

/// The trigger metadata key that names the Ballast policy.
pub const POLICY_KEY: &str = "policy";

/// Why the gRPC server stopped.
#[derive(Debug, thiserror::Error)]
pub enum KedaError {
    /// The server could not accept connections or serve them.
    #[error("the KEDA external scaler server failed: {0}")]
    ServeFailed(#[from] tonic::transport::Error),
}

/// Serves KEDA's external scaler protocol for the policies on `board`, on connections
/// accepted from `listener` (bind it yourself, so a test can use port 0 and the caller can
/// log the address), until `shutdown` completes. Plain HTTP/2 without TLS: KEDA reaches the
/// scaler inside the cluster.
///
/// When `shutdown` completes, open `StreamIsActive` streams end, the listener closes and the
/// function returns once every connection has closed.
pub async fn serve(
    board: KedaBoard,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), KedaError> {
    let closing = CancellationToken::new();
    let scaler = Scaler {
        board,
        closing: closing.clone(),
    };
    let signal = async move {
        shutdown.await;
        closing.cancel();
    };
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(
            ExternalScalerServer::new(scaler),
            TcpIncoming::from(listener),
            signal,
        )
        .await?;
    Ok(())
}

/// The `ExternalScaler` service over a board.
#[derive(Debug, Clone)]
struct Scaler {
    board: KedaBoard,
    /// Cancelled at shutdown, so that open streams end and the server can stop.
    closing: CancellationToken,
}

impl Scaler {
    /// The policy the trigger's metadata names, and what it has published.
    fn lookup(&self, object: &ScaledObjectRef) -> Result<(String, Published), Status> {
        let so = format!("ScaledObject {}/{}", object.namespace, object.name);
        let Some(policy) = object.scaler_metadata.get(POLICY_KEY) else {
            return Err(Status::invalid_argument(format!(
                "{so}: the trigger's metadata has no `{POLICY_KEY}` key; \
                 add `{POLICY_KEY}: <name of the Ballast policy>` to its external trigger"
            )));
        };
        let policy = policy.trim();
        if policy.is_empty() {
            return Err(Status::invalid_argument(format!(
                "{so}: the trigger's metadata key `{POLICY_KEY}` is empty; \
                 it must name a Ballast policy"
            )));
        }
        match self.board.get(policy) {
            Some(published) => Ok((policy.to_string(), published)),
            None => {
                let known = self.board.policies();
                let known = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                Err(Status::not_found(format!(
                    "{so}: no Ballast policy `{policy}` (metadata key `{POLICY_KEY}`) \
                     publishes to KEDA; policies with a `keda` target: {known}"
                )))
            }
        }
    }
}

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Scaler {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let (policy, published) = self.lookup(request.get_ref())?;
        tracing::debug!(%policy, active = published.active(), "keda: IsActive");
        Ok(Response::new(IsActiveResponse {
            result: published.active(),
        }))
    }

    type StreamIsActiveStream = ResponseStream<IsActiveResponse>;

    /// One answer at once, then one each time the policy's active flag flips. The stream
    /// ends when the policy leaves the board or the server shuts down.
    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let (policy, _) = self.lookup(request.get_ref())?;
        let Some(mut published) = self.board.subscribe(&policy) else {
            return Err(Status::not_found(format!(
                "Ballast policy `{policy}` left the board"
            )));
        };
        let closing = self.closing.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let active = published.borrow_and_update().active();
                if last != Some(active) {
                    last = Some(active);
                    tracing::debug!(%policy, active, "keda: StreamIsActive");
                    if tx
                        .send(Ok(IsActiveResponse { result: active }))
                        .await
                        .is_err()
                    {
                        return; // KEDA hung up.
                    }
                }
                tokio::select! {
                    changed = published.changed() => {
                        if changed.is_err() {
                            return; // The policy left the board.
                        }
                    }
                    () = closing.cancelled() => return,
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let (policy, _) = self.lookup(request.get_ref())?;
        tracing::debug!(%policy, "keda: GetMetricSpec");
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: metric_name(&policy),
                // For KEDA releases that read only the integer field.
                target_size: METRIC_TARGET as i64,
                target_size_float: METRIC_TARGET,
            }],
        }))
    }

    /// The value of the one metric of [`get_metric_spec`](Scaler::get_metric_spec). The
    /// request's metric name is not checked: KEDA strips its own `s<index>-` prefix from it,
    /// and the policy alone decides the value.
    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let request = request.into_inner();
        let Some(object) = request.scaled_object_ref else {
            return Err(Status::invalid_argument(
                "GetMetrics: the request has no `scaledObjectRef`",
            ));
        };
        let (policy, published) = self.lookup(&object)?;
        let value = metric_value(&published);
        tracing::debug!(%policy, desired = published.desired, value, "keda: GetMetrics");
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: metric_name(&policy),
                // Whole numbers well below 2^53, so the integer field says the same.
                metric_value: value as i64,
                metric_value_float: value,
            }],
        }))
    }

    type StreamMetricSpecStream = ResponseStream<GetMetricSpecResponse>;

    /// The spec never changes, so there is nothing to push.
    async fn stream_metric_spec(
        &self,
        _request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamMetricSpecStream>, Status> {
        Err(Status::unimplemented(
            "Ballast's metric spec never changes; use GetMetricSpec",
        ))
    }
}
