//! `tyboo.tenancy.v1.TenancyService`.

use tonic::{Request, Response, Status};
use tyboo_auth::Principal;
use tyboo_proto::tenancy::tenancy_service_server::TenancyService;
use tyboo_proto::tenancy::*;

use super::conversions::{from_timestamp, non_empty};
use crate::domain::audit::decode_page_token;
use crate::domain::validation::{Email, Name, parse_id, parse_role};
use crate::domain::{AuditQuery, Domain};
use crate::error::TenancyError;
use crate::storage;

#[derive(Clone, Debug)]
pub struct TenancyGrpc {
    domain: Domain,
}

impl TenancyGrpc {
    pub fn new(domain: Domain) -> Self {
        Self { domain }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let bearer = tyboo_auth::bearer_token(request.metadata());
        Ok(self.domain.verify_caller(bearer).await?)
    }

    fn name(&self, field: &'static str, value: &str) -> Result<Name, TenancyError> {
        Name::parse(field, value, self.domain.config().max_name_length)
    }
}

#[tonic::async_trait]
impl TenancyService for TenancyGrpc {
    #[tracing::instrument(skip(self, request))]
    async fn get_current_principal(
        &self,
        request: Request<GetCurrentPrincipalRequest>,
    ) -> Result<Response<GetCurrentPrincipalResponse>, Status> {
        let caller = self.caller(&request).await?;
        let GetCurrentPrincipalRequest {} = request.into_inner();
        let (principal, user) = self.domain.current_principal(&caller).await?;
        let (email, display_name) = user
            .map(|user| (user.email, user.display_name))
            .unwrap_or_default();
        Ok(Response::new(GetCurrentPrincipalResponse {
            principal: Some(principal.to_proto()),
            email,
            display_name,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_organization(
        &self,
        request: Request<GetOrganizationRequest>,
    ) -> Result<Response<GetOrganizationResponse>, Status> {
        let caller = self.caller(&request).await?;
        let GetOrganizationRequest {} = request.into_inner();
        let scope = self.domain.own_scope(&caller).await?;
        let organization = self.domain.get_organization(&scope).await?;
        Ok(Response::new(GetOrganizationResponse {
            organization: Some(organization.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn create_workspace(
        &self,
        request: Request<CreateWorkspaceRequest>,
    ) -> Result<Response<CreateWorkspaceResponse>, Status> {
        let caller = self.caller(&request).await?;
        let CreateWorkspaceRequest { name } = request.into_inner();
        let name = self.name("name", &name)?;
        let scope = self.domain.own_scope(&caller).await?;
        let (workspace, owner_api_key) = self.domain.create_workspace(&scope, &name).await?;
        Ok(Response::new(CreateWorkspaceResponse {
            workspace: Some(workspace.into()),
            owner_api_key: Some(owner_api_key.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_workspaces(
        &self,
        request: Request<ListWorkspacesRequest>,
    ) -> Result<Response<ListWorkspacesResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListWorkspacesRequest {} = request.into_inner();
        let scope = self.domain.own_scope(&caller).await?;
        let workspaces = self.domain.list_workspaces(&scope).await?;
        Ok(Response::new(ListWorkspacesResponse {
            workspaces: workspaces.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn get_workspace(
        &self,
        request: Request<GetWorkspaceRequest>,
    ) -> Result<Response<GetWorkspaceResponse>, Status> {
        let caller = self.caller(&request).await?;
        let GetWorkspaceRequest { workspace_id } = request.into_inner();
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let workspace = self.domain.get_workspace(&scope).await?;
        Ok(Response::new(GetWorkspaceResponse {
            workspace: Some(workspace.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListMembersRequest { workspace_id } = request.into_inner();
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let members = self.domain.list_members(&scope).await?;
        Ok(Response::new(ListMembersResponse {
            members: members.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn update_member_role(
        &self,
        request: Request<UpdateMemberRoleRequest>,
    ) -> Result<Response<UpdateMemberRoleResponse>, Status> {
        let caller = self.caller(&request).await?;
        let UpdateMemberRoleRequest {
            workspace_id,
            user_id,
            role,
        } = request.into_inner();
        let user_id = parse_id("user_id", &user_id)?;
        let role = parse_role("role", role)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let member = self
            .domain
            .update_member_role(&scope, user_id, role)
            .await?;
        Ok(Response::new(UpdateMemberRoleResponse {
            member: Some(member.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn remove_member(
        &self,
        request: Request<RemoveMemberRequest>,
    ) -> Result<Response<RemoveMemberResponse>, Status> {
        let caller = self.caller(&request).await?;
        let RemoveMemberRequest {
            workspace_id,
            user_id,
        } = request.into_inner();
        let user_id = parse_id("user_id", &user_id)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        self.domain.remove_member(&scope, user_id).await?;
        Ok(Response::new(RemoveMemberResponse {}))
    }

    #[tracing::instrument(skip(self, request))]
    async fn create_invitation(
        &self,
        request: Request<CreateInvitationRequest>,
    ) -> Result<Response<CreateInvitationResponse>, Status> {
        let caller = self.caller(&request).await?;
        let CreateInvitationRequest {
            workspace_id,
            email,
            role,
            ttl_seconds,
        } = request.into_inner();
        let email = Email::parse("email", &email)?;
        let role = parse_role("role", role)?;
        let ttl = self.domain.invitation_ttl(ttl_seconds)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let issued = self
            .domain
            .create_invitation(&scope, &email, role, ttl)
            .await?;
        Ok(Response::new(CreateInvitationResponse {
            invitation: Some(issued.invitation.into()),
            token: issued.token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_invitations(
        &self,
        request: Request<ListInvitationsRequest>,
    ) -> Result<Response<ListInvitationsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListInvitationsRequest {
            workspace_id,
            include_closed,
        } = request.into_inner();
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let invitations = self.domain.list_invitations(&scope, include_closed).await?;
        Ok(Response::new(ListInvitationsResponse {
            invitations: invitations.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn revoke_invitation(
        &self,
        request: Request<RevokeInvitationRequest>,
    ) -> Result<Response<RevokeInvitationResponse>, Status> {
        let caller = self.caller(&request).await?;
        let RevokeInvitationRequest {
            workspace_id,
            invitation_id,
        } = request.into_inner();
        let invitation_id = parse_id("invitation_id", &invitation_id)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let invitation = self.domain.revoke_invitation(&scope, invitation_id).await?;
        Ok(Response::new(RevokeInvitationResponse {
            invitation: Some(invitation.into()),
        }))
    }

    /// The token is the credential for a new address; an address that
    /// already has an account also needs that account's own principal.
    #[tracing::instrument(skip(self, request))]
    async fn accept_invitation(
        &self,
        request: Request<AcceptInvitationRequest>,
    ) -> Result<Response<AcceptInvitationResponse>, Status> {
        let caller = match tyboo_auth::bearer_token(request.metadata()) {
            Some(_) => Some(self.caller(&request).await?),
            None => None,
        };
        let AcceptInvitationRequest {
            token,
            display_name,
        } = request.into_inner();
        if token.is_empty() {
            return Err(TenancyError::invalid("token", "must be set").into());
        }
        let display_name = if display_name.trim().is_empty() {
            None
        } else {
            Some(self.name("display_name", &display_name)?)
        };
        let acceptance = self
            .domain
            .accept_invitation(&token, display_name.as_ref(), caller.as_ref())
            .await?;
        Ok(Response::new(AcceptInvitationResponse {
            member: Some(acceptance.member.into()),
            workspace: Some(acceptance.workspace.into()),
            api_key: Some(acceptance.api_key.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let CreateApiKeyRequest {
            workspace_id,
            name,
            expire_time,
        } = request.into_inner();
        let name = self.name("name", &name)?;
        let expire_time = expire_time
            .map(|value| from_timestamp("expire_time", &value))
            .transpose()?;
        if expire_time.is_some_and(|expiry| expiry <= storage::now()) {
            return Err(TenancyError::invalid("expire_time", "must lie in the future").into());
        }
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let issued = self
            .domain
            .create_api_key(&scope, &name, expire_time)
            .await?;
        Ok(Response::new(CreateApiKeyResponse {
            api_key: Some(issued.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListApiKeysRequest { workspace_id } = request.into_inner();
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let api_keys = self.domain.list_api_keys(&scope).await?;
        Ok(Response::new(ListApiKeysResponse {
            api_keys: api_keys.into_iter().map(Into::into).collect(),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn rotate_api_key(
        &self,
        request: Request<RotateApiKeyRequest>,
    ) -> Result<Response<RotateApiKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let RotateApiKeyRequest {
            workspace_id,
            api_key_id,
        } = request.into_inner();
        let api_key_id = parse_id("api_key_id", &api_key_id)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let issued = self.domain.rotate_api_key(&scope, api_key_id).await?;
        Ok(Response::new(RotateApiKeyResponse {
            api_key: Some(issued.into()),
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<RevokeApiKeyResponse>, Status> {
        let caller = self.caller(&request).await?;
        let RevokeApiKeyRequest {
            workspace_id,
            api_key_id,
        } = request.into_inner();
        let api_key_id = parse_id("api_key_id", &api_key_id)?;
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        self.domain.revoke_api_key(&scope, api_key_id).await?;
        Ok(Response::new(RevokeApiKeyResponse {}))
    }

    #[tracing::instrument(skip(self, request))]
    async fn list_audit_events(
        &self,
        request: Request<ListAuditEventsRequest>,
    ) -> Result<Response<ListAuditEventsResponse>, Status> {
        let caller = self.caller(&request).await?;
        let ListAuditEventsRequest {
            workspace_id,
            action,
            actor,
            target,
            start_time,
            end_time,
            page_size,
            page_token,
        } = request.into_inner();
        let start_time = start_time
            .map(|value| from_timestamp("start_time", &value))
            .transpose()?;
        let end_time = end_time
            .map(|value| from_timestamp("end_time", &value))
            .transpose()?;
        // An empty window (end at or before start) is not an error: it holds
        // no events, as the filter itself says.
        let query = AuditQuery {
            action: non_empty(action),
            actor: non_empty(actor),
            target: non_empty(target),
            start_time,
            end_time,
            page_size: self.domain.audit_page_size(page_size)?,
            before_sequence: decode_page_token(&page_token)?,
        };
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let page = self.domain.list_audit_events(&scope, &query).await?;
        Ok(Response::new(ListAuditEventsResponse {
            events: page.events.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    #[tracing::instrument(skip(self, request))]
    async fn verify_audit_log(
        &self,
        request: Request<VerifyAuditLogRequest>,
    ) -> Result<Response<VerifyAuditLogResponse>, Status> {
        let caller = self.caller(&request).await?;
        let VerifyAuditLogRequest { workspace_id } = request.into_inner();
        let scope = self.domain.workspace_scope(&caller, &workspace_id).await?;
        let verification = self.domain.verify_audit_log(&scope).await?;
        Ok(Response::new(verification.into()))
    }
}
