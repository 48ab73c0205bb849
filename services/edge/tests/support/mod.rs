#![allow(dead_code)] // Each test binary uses a part of the support.

//! A real tonic server implementing `TenancyService` and `AuthService` just
//! far enough to show what the edge did (it echoes the metadata it received
//! and counts key exchanges), and a sandbox that runs it with an edge in
//! front, each on its own `127.0.0.1:0` listener bound before it starts.
//! Methods the tests do not need answer `UNIMPLEMENTED`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tyboo_edge::server::{ConnectionLimits, serve};
use tyboo_edge::{Edge, EdgeConfig, RateLimits, Upstream};
use tyboo_proto::executor::webhook_service_server::{WebhookService, WebhookServiceServer};
use tyboo_proto::executor::{DeliverWebhookRequest, DeliverWebhookResponse};
use tyboo_proto::tenancy::auth_service_server::{AuthService, AuthServiceServer};
use tyboo_proto::tenancy::tenancy_service_server::{TenancyService, TenancyServiceServer};
use tyboo_proto::tenancy::*;

pub const TENANCY: &str = "tyboo.tenancy.v1.TenancyService";
pub const GOOD_KEY: &str = "tyb_good_key";
pub const PRINCIPAL_TOKEN: &str = "principal-token-of-good-key";
/// A good key whose exchange takes a while, to catch concurrent misses.
pub const SLOW_KEY: &str = "tyb_slow_key";
/// A second key of `GOOD_KEY`'s workspace.
pub const SECOND_KEY: &str = "tyb_second_key";
/// A key of another workspace.
pub const OTHER_WORKSPACE_KEY: &str = "tyb_other_workspace_key";
/// The workspace of `GOOD_KEY`, `SLOW_KEY` and `SECOND_KEY`.
pub const WORKSPACE: &str = "0190a000-0000-7000-8000-00000000000a";
/// The workspace of `OTHER_WORKSPACE_KEY`.
pub const OTHER_WORKSPACE: &str = "0190a000-0000-7000-8000-00000000000b";
/// How long `GET /v1/me` takes to answer: a slow upstream.
pub const SLOW_CALL: Duration = Duration::from_millis(400);

#[derive(Default)]
pub struct Counters {
    authenticate_calls: AtomicUsize,
}

struct FakeAuth {
    counters: Arc<Counters>,
}

#[tonic::async_trait]
impl AuthService for FakeAuth {
    async fn authenticate(
        &self,
        request: Request<AuthenticateRequest>,
    ) -> Result<Response<AuthenticateResponse>, Status> {
        self.counters
            .authenticate_calls
            .fetch_add(1, Ordering::SeqCst);
        let (workspace, key_id) = match request.get_ref().api_key.as_str() {
            GOOD_KEY => (WORKSPACE, "key-good"),
            SECOND_KEY => (WORKSPACE, "key-second"),
            OTHER_WORKSPACE_KEY => (OTHER_WORKSPACE, "key-other"),
            SLOW_KEY => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                (WORKSPACE, "key-slow")
            }
            _ => return Err(Status::unauthenticated("unknown API key")),
        };
        let expire_time = SystemTime::now() + Duration::from_secs(600);
        Ok(Response::new(AuthenticateResponse {
            token: PRINCIPAL_TOKEN.into(),
            expire_time: Some(expire_time.into()),
            principal: Some(tyboo_proto::common::Principal {
                workspace_id: workspace.into(),
                api_key_id: key_id.into(),
                ..Default::default()
            }),
        }))
    }

    async fn get_signing_keys(
        &self,
        _request: Request<GetSigningKeysRequest>,
    ) -> Result<Response<GetSigningKeysResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn issue_service_token(
        &self,
        _request: Request<IssueServiceTokenRequest>,
    ) -> Result<Response<IssueServiceTokenResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn rotate_signing_key(
        &self,
        _request: Request<RotateSigningKeyRequest>,
    ) -> Result<Response<RotateSigningKeyResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn list_access_changes(
        &self,
        _request: Request<ListAccessChangesRequest>,
    ) -> Result<Response<ListAccessChangesResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

struct FakeTenancy;

/// Starts nothing: answers every delivery with an execution id, so that
/// what the edge puts in front of it shows.
struct FakeWebhooks;

#[tonic::async_trait]
impl WebhookService for FakeWebhooks {
    async fn deliver_webhook(
        &self,
        _request: Request<DeliverWebhookRequest>,
    ) -> Result<Response<DeliverWebhookResponse>, Status> {
        Ok(Response::new(DeliverWebhookResponse {
            execution_id: "execution-1".into(),
            ..DeliverWebhookResponse::default()
        }))
    }
}

fn metadata_text<T>(request: &Request<T>, key: &str) -> String {
    request
        .metadata()
        .get(key)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Implements `TenancyService` with the given methods; every other method
/// answers `UNIMPLEMENTED`.
macro_rules! fake_tenancy {
    (
        answered { $($answered:tt)* }
        unimplemented { $($name:ident($request:ident) -> $response:ident;)* }
    ) => {
        #[tonic::async_trait]
        impl TenancyService for FakeTenancy {
            $($answered)*
            $(
                async fn $name(
                    &self,
                    _request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    Err(Status::unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

fake_tenancy! {
    answered {
        /// Answers after `SLOW_CALL`: what holds a place under the
        /// in-flight cap.
        async fn get_current_principal(
            &self,
            _request: Request<GetCurrentPrincipalRequest>,
        ) -> Result<Response<GetCurrentPrincipalResponse>, Status> {
            tokio::time::sleep(SLOW_CALL).await;
            Ok(Response::new(GetCurrentPrincipalResponse::default()))
        }

        /// Accepts every token (the limit in front of it is under test).
        async fn accept_invitation(
            &self,
            _request: Request<AcceptInvitationRequest>,
        ) -> Result<Response<AcceptInvitationResponse>, Status> {
            Ok(Response::new(AcceptInvitationResponse::default()))
        }

        /// Echoes the path variable, the query flag, the forwarded principal
        /// token and the request id.
        async fn list_invitations(
            &self,
            request: Request<ListInvitationsRequest>,
        ) -> Result<Response<ListInvitationsResponse>, Status> {
            let invitation = Invitation {
                id: format!("include_closed={}", request.get_ref().include_closed),
                workspace_id: request.get_ref().workspace_id.clone(),
                invited_by: metadata_text(&request, "authorization"),
                email: metadata_text(&request, "x-request-id"),
                ..Invitation::default()
            };
            Ok(Response::new(ListInvitationsResponse {
                invitations: vec![invitation],
            }))
        }

        async fn create_invitation(
            &self,
            request: Request<CreateInvitationRequest>,
        ) -> Result<Response<CreateInvitationResponse>, Status> {
            let token = metadata_text(&request, "authorization");
            let body = request.into_inner();
            Ok(Response::new(CreateInvitationResponse {
                invitation: Some(Invitation {
                    workspace_id: body.workspace_id,
                    email: body.email,
                    role: body.role,
                    ..Invitation::default()
                }),
                token,
            }))
        }

        async fn list_members(
            &self,
            request: Request<ListMembersRequest>,
        ) -> Result<Response<ListMembersResponse>, Status> {
            let member = Member {
                user_id: metadata_text(&request, "authorization"),
                display_name: metadata_text(&request, "x-request-id"),
                workspace_id: request.get_ref().workspace_id.clone(),
                ..Member::default()
            };
            Ok(Response::new(ListMembersResponse {
                members: vec![member],
            }))
        }

        /// Refuses every token, as a service does for a revoked key.
        async fn get_workspace(
            &self,
            _request: Request<GetWorkspaceRequest>,
        ) -> Result<Response<GetWorkspaceResponse>, Status> {
            Err(Status::unauthenticated("the API key was revoked"))
        }
    }
    unimplemented {
        get_organization(GetOrganizationRequest) -> GetOrganizationResponse;
        create_workspace(CreateWorkspaceRequest) -> CreateWorkspaceResponse;
        list_workspaces(ListWorkspacesRequest) -> ListWorkspacesResponse;
        update_member_role(UpdateMemberRoleRequest) -> UpdateMemberRoleResponse;
        remove_member(RemoveMemberRequest) -> RemoveMemberResponse;
        revoke_invitation(RevokeInvitationRequest) -> RevokeInvitationResponse;
        create_api_key(CreateApiKeyRequest) -> CreateApiKeyResponse;
        list_api_keys(ListApiKeysRequest) -> ListApiKeysResponse;
        rotate_api_key(RotateApiKeyRequest) -> RotateApiKeyResponse;
        revoke_api_key(RevokeApiKeyRequest) -> RevokeApiKeyResponse;
        list_audit_events(ListAuditEventsRequest) -> ListAuditEventsResponse;
        verify_audit_log(VerifyAuditLogRequest) -> VerifyAuditLogResponse;
    }
}

/// A JSON answer from the edge.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Json,
}

/// The fake service and an edge in front of it, each on its own
/// `127.0.0.1:0` listener bound before the server starts.
pub struct Sandbox {
    pub edge: Edge,
    edge_address: SocketAddr,
    counters: Arc<Counters>,
    http: Client<HttpConnector, Full<Bytes>>,
    shutdowns: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Sandbox {
    pub async fn start(config: EdgeConfig) -> Self {
        Self::start_with(config, None).await
    }

    /// An edge whose rate limits are `limits` rather than the in-process
    /// defaults.
    pub async fn start_with(config: EdgeConfig, limits: Option<RateLimits>) -> Self {
        let counters = Arc::new(Counters::default());
        let service_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let service_address = service_listener.local_addr().expect("address");
        let (service_stop, service_stopped) = oneshot::channel::<()>();
        let router = Server::builder()
            .add_service(TenancyServiceServer::new(FakeTenancy))
            .add_service(WebhookServiceServer::new(FakeWebhooks))
            .add_service(AuthServiceServer::new(FakeAuth {
                counters: Arc::clone(&counters),
            }));
        let service_task = tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpListenerStream::new(service_listener), async {
                    service_stopped.await.ok();
                })
                .await
                .expect("test service runs");
        });
        let channel = lazy_channel(service_address);
        let mut sandbox = Self::start_edge(config, channel, counters, limits).await;
        sandbox.shutdowns.push(service_stop);
        sandbox.tasks.push(service_task);
        sandbox
    }

    pub async fn start_edge(
        config: EdgeConfig,
        channel: Channel,
        counters: Arc<Counters>,
        limits: Option<RateLimits>,
    ) -> Self {
        let connection_limits = ConnectionLimits::from_config(&config);
        let mut edge = Edge::new(
            config,
            vec![Upstream {
                service: TENANCY.into(),
                channel: channel.clone(),
            }],
            channel.clone(),
        )
        .expect("edge builds");
        edge = edge.with_webhooks(channel);
        if let Some(limits) = limits {
            edge = edge.with_rate_limits(limits);
        }
        let edge_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let edge_address = edge_listener.local_addr().expect("address");
        let (edge_stop, edge_stopped) = oneshot::channel::<()>();
        let router = edge.router();
        // The edge's own server, which tells the handlers each
        // connection's peer address.
        let edge_task = tokio::spawn(async move {
            serve(edge_listener, router, connection_limits, async {
                edge_stopped.await.ok();
            })
            .await;
        });
        Self {
            edge,
            edge_address,
            counters,
            http: Client::builder(TokioExecutor::new()).build_http(),
            shutdowns: vec![edge_stop],
            tasks: vec![edge_task],
        }
    }

    pub async fn shutdown(self) {
        drop(self.http);
        for stop in self.shutdowns {
            stop.send(()).ok();
        }
        for task in self.tasks {
            // A connection a client still holds open must not hang the test.
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }

    pub fn authenticate_calls(&self) -> usize {
        self.counters.authenticate_calls.load(Ordering::SeqCst)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        self.send(&self.http, method, path, headers, body).await
    }

    /// A call from the loopback address `from` (such as `127.0.0.2`), a
    /// client address of its own.
    pub async fn call_from(
        &self,
        from: IpAddr,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut connector = HttpConnector::new();
        connector.set_local_address(Some(from));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        self.send(&client, method, path, headers, body).await
    }

    async fn send(
        &self,
        client: &Client<HttpConnector, Full<Bytes>>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.edge_address));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let response = client.request(request).await.expect("edge answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let json = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into()))
        };
        Answer {
            status,
            headers,
            json,
        }
    }

    pub async fn grpc_channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.edge_address))
            .expect("endpoint")
            .connect()
            .await
            .expect("h2c connection to the edge")
    }
}

pub fn lazy_channel(address: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{address}"))
        .expect("endpoint")
        .connect_lazy()
}

pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}
