//! The answer to a call on a service that this server does not serve.
//!
//! Every port speaks gRPC and every client is generated from the same
//! contracts, so calling a service on the wrong port is an easy mistake; an
//! empty `UNIMPLEMENTED` does not say what went wrong. The fallback of each
//! server's router says which service was asked for and where it is served.

use std::collections::HashMap;
use std::sync::Arc;

use tonic::Status;

use crate::reflection::{REFLECTION_V1_SERVICE, REFLECTION_V1ALPHA_SERVICE};

/// What a server needs to explain a call it cannot route.
#[derive(Clone, Debug)]
pub struct Unserved {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The contract services this port serves, for the "unknown" message.
    served: Vec<String>,
    /// Every service of the contracts and who serves it ("the executor").
    owners: HashMap<String, String>,
    /// The config key that turns reflection on here, when it is off.
    reflection_switch: Option<&'static str>,
}

impl Unserved {
    /// For a server of `served`; `reflection_switch` names the key that
    /// would turn reflection on when it is off (`None` when it is served).
    pub fn new(served: &[&str], reflection_switch: Option<&'static str>) -> Unserved {
        let owners = tyboo_proto::service_names()
            .into_iter()
            .filter_map(|service| owner_of(&service).map(|owner| (service, owner)))
            .collect();
        Unserved {
            inner: Arc::new(Inner {
                served: served.iter().map(|name| (*name).to_owned()).collect(),
                owners,
                reflection_switch,
            }),
        }
    }

    /// The `UNIMPLEMENTED` answer for a call on `path` (`/service/Method`).
    pub fn status(&self, path: &str) -> Status {
        Status::unimplemented(self.message(path))
    }

    fn message(&self, path: &str) -> String {
        let Some(service) = service_of(path) else {
            return format!("`{path}` is not a gRPC method path (`/package.Service/Method`)");
        };
        if (service == REFLECTION_V1_SERVICE || service == REFLECTION_V1ALPHA_SERVICE)
            && let Some(switch) = self.inner.reflection_switch
        {
            return format!(
                "{service} is not served on this port: server reflection is off \
                 ({switch} = false)"
            );
        }
        if let Some(owner) = self.inner.owners.get(service) {
            return format!("{service} is not served on this port; it is served by {owner}");
        }
        format!(
            "unknown service {service}; this port serves {}",
            self.inner.served.join(", ")
        )
    }

    /// An axum handler that answers every call with [`Unserved::status`]: the
    /// fallback of a server's routes.
    pub fn into_fallback(
        self,
    ) -> impl Fn(
        http::Request<axum::body::Body>,
    ) -> std::future::Ready<http::Response<axum::body::Body>>
    + Clone
    + Send
    + Sync
    + 'static {
        move |request| {
            let status = self.status(request.uri().path());
            std::future::ready(status.into_http())
        }
    }
}

/// `service` of `/service/Method`, when the path has that shape.
fn service_of(path: &str) -> Option<&str> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some(service)
}

/// Who serves a contract service, from its package `tyboo.<owner>.v1`, in the
/// words the README uses for each service.
fn owner_of(service: &str) -> Option<String> {
    let owner = service.strip_prefix("tyboo.")?.split('.').next()?;
    Some(match owner {
        "tenancy" => "tenancy".to_owned(),
        "metering" => "metering".to_owned(),
        "vault" => "the vault".to_owned(),
        "executor" => "the executor".to_owned(),
        other => format!("the {other} service"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenancy_port(reflection_switch: Option<&'static str>) -> Unserved {
        Unserved::new(
            &[
                "tyboo.tenancy.v1.TenancyService",
                "tyboo.tenancy.v1.AuthService",
            ],
            reflection_switch,
        )
    }

    #[test]
    fn a_service_of_another_port_is_named_with_its_owner() {
        let unserved = tenancy_port(None);
        let status = unserved.status("/tyboo.executor.v1.WorkflowService/ListWorkflows");
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert_eq!(
            status.message(),
            "tyboo.executor.v1.WorkflowService is not served on this port; it is served by the \
             executor"
        );
        assert_eq!(
            unserved.message("/tyboo.vault.v1.CredentialService/ListCredentials"),
            "tyboo.vault.v1.CredentialService is not served on this port; it is served by the \
             vault"
        );
    }

    #[test]
    fn unknown_services_and_paths_say_so() {
        let unserved = tenancy_port(None);
        assert_eq!(
            unserved.message("/acme.v1.Rockets/Launch"),
            "unknown service acme.v1.Rockets; this port serves tyboo.tenancy.v1.TenancyService, \
             tyboo.tenancy.v1.AuthService"
        );
        assert!(
            unserved
                .message("/not-a-method")
                .contains("is not a gRPC method path"),
        );
        // The package names a service that does not exist: no owner is made up.
        assert!(
            unserved
                .message("/tyboo.executor.v1.Nothing/Do")
                .starts_with("unknown service tyboo.executor.v1.Nothing;")
        );
    }

    #[test]
    fn reflection_switched_off_names_its_switch() {
        let unserved = tenancy_port(Some("grpc.reflection"));
        assert_eq!(
            unserved.message("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            "grpc.reflection.v1.ServerReflection is not served on this port: server reflection \
             is off (grpc.reflection = false)"
        );
        assert!(
            unserved
                .message("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
                .contains("(grpc.reflection = false)")
        );
    }
}
