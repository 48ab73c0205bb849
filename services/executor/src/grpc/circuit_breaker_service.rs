//! `tyboo.executor.v1.CircuitBreakerService`: internal, for platform
//! operators only.

use tonic::{Request, Response, Status};
use tyboo_auth::Principal;
use tyboo_proto::executor::circuit_breaker_service_server::CircuitBreakerService;
use tyboo_proto::executor::*;

use super::conversions::{breaker_key_from_proto, breaker_to_proto};
use crate::domain::Domain;
use crate::domain::breakers::BreakerChange;
use crate::error::ExecutorResult;

#[derive(Clone, Debug)]
pub struct CircuitBreakerGrpc {
    domain: Domain,
}

impl CircuitBreakerGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }

    async fn operator<T>(&self, request: &Request<T>) -> ExecutorResult<Principal> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        self.domain.authorize_operator(bearer).await
    }

    async fn change(
        &self,
        operator: &Principal,
        key: Option<CircuitBreakerKey>,
        change: BreakerChange,
    ) -> ExecutorResult<CircuitBreaker> {
        let key = breaker_key_from_proto(key)?;
        let state = self.domain.change_breaker(operator, &key, change).await?;
        Ok(breaker_to_proto(&state))
    }
}

#[tonic::async_trait]
impl CircuitBreakerService for CircuitBreakerGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn list_circuit_breakers(
        &self,
        request: Request<ListCircuitBreakersRequest>,
    ) -> Result<Response<ListCircuitBreakersResponse>, Status> {
        let operator = self.operator(&request).await?;
        let ListCircuitBreakersRequest {} = request.into_inner();
        let listed = self.domain.list_breakers(&operator).await?;
        Ok(Response::new(ListCircuitBreakersResponse {
            circuit_breakers: listed.iter().map(breaker_to_proto).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_circuit_breaker(
        &self,
        request: Request<GetCircuitBreakerRequest>,
    ) -> Result<Response<GetCircuitBreakerResponse>, Status> {
        let operator = self.operator(&request).await?;
        let GetCircuitBreakerRequest { key } = request.into_inner();
        let key = breaker_key_from_proto(key)?;
        let state = self.domain.get_breaker(&operator, &key).await?;
        Ok(Response::new(GetCircuitBreakerResponse {
            circuit_breaker: Some(breaker_to_proto(&state)),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn reset_circuit_breaker(
        &self,
        request: Request<ResetCircuitBreakerRequest>,
    ) -> Result<Response<ResetCircuitBreakerResponse>, Status> {
        let operator = self.operator(&request).await?;
        let ResetCircuitBreakerRequest { key } = request.into_inner();
        let breaker = self.change(&operator, key, BreakerChange::Reset).await?;
        Ok(Response::new(ResetCircuitBreakerResponse {
            circuit_breaker: Some(breaker),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn force_open_circuit_breaker(
        &self,
        request: Request<ForceOpenCircuitBreakerRequest>,
    ) -> Result<Response<ForceOpenCircuitBreakerResponse>, Status> {
        let operator = self.operator(&request).await?;
        let ForceOpenCircuitBreakerRequest { key } = request.into_inner();
        let breaker = self
            .change(&operator, key, BreakerChange::ForceOpen)
            .await?;
        Ok(Response::new(ForceOpenCircuitBreakerResponse {
            circuit_breaker: Some(breaker),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn force_close_circuit_breaker(
        &self,
        request: Request<ForceCloseCircuitBreakerRequest>,
    ) -> Result<Response<ForceCloseCircuitBreakerResponse>, Status> {
        let operator = self.operator(&request).await?;
        let ForceCloseCircuitBreakerRequest { key } = request.into_inner();
        let breaker = self
            .change(&operator, key, BreakerChange::ForceClosed)
            .await?;
        Ok(Response::new(ForceCloseCircuitBreakerResponse {
            circuit_breaker: Some(breaker),
        }))
    }
}
