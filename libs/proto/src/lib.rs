//! Generated code for every Tyboo contract, and the descriptor set that server
//! reflection and the edge's HTTP/JSON transcoder read.

/// The encoded `FileDescriptorSet` of every contract and its imports, with
/// custom options (such as `google.api.http`) preserved.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tyboo_descriptor.bin"));

/// The full name of every Tyboo service in the contracts, internal ones
/// included (`tyboo.tenancy.v1.AuthService`, …), in descriptor order.
pub fn service_names() -> Vec<String> {
    use prost::Message as _;
    // Compiled into the binary by build.rs: it decodes unless the build is
    // broken.
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    set.file
        .iter()
        .filter(|file| file.package().starts_with("tyboo."))
        .flat_map(|file| {
            file.service
                .iter()
                .map(|service| format!("{}.{}", file.package(), service.name()))
        })
        .collect()
}

pub mod convert;
pub mod validation;

pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

/// The validation rules the contracts annotate their fields with.
pub mod buf {
    pub mod validate {
        tonic::include_proto!("buf.validate");
    }
}

pub mod tyboo {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("tyboo.common.v1");
        }
    }
    pub mod tenancy {
        pub mod v1 {
            tonic::include_proto!("tyboo.tenancy.v1");
        }
    }
    pub mod executor {
        pub mod v1 {
            tonic::include_proto!("tyboo.executor.v1");
        }
    }
    pub mod vault {
        pub mod v1 {
            tonic::include_proto!("tyboo.vault.v1");
        }
    }
    pub mod metering {
        pub mod v1 {
            tonic::include_proto!("tyboo.metering.v1");
        }
    }
}

pub use tyboo::common::v1 as common;
pub use tyboo::executor::v1 as executor;
pub use tyboo::metering::v1 as metering;
pub use tyboo::tenancy::v1 as tenancy;
pub use tyboo::vault::v1 as vault;

#[cfg(test)]
mod tests {
    #[test]
    fn every_contract_service_is_named_once() {
        let names = super::service_names();
        let unique: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for expected in [
            crate::tenancy::tenancy_service_server::SERVICE_NAME,
            crate::tenancy::auth_service_server::SERVICE_NAME,
            crate::tenancy::audit_service_server::SERVICE_NAME,
            crate::vault::credential_service_server::SERVICE_NAME,
            crate::vault::credential_access_service_server::SERVICE_NAME,
            crate::vault::key_management_service_server::SERVICE_NAME,
            crate::executor::workflow_service_server::SERVICE_NAME,
            crate::executor::execution_service_server::SERVICE_NAME,
            crate::executor::dead_letter_service_server::SERVICE_NAME,
            crate::executor::webhook_service_server::SERVICE_NAME,
            crate::executor::circuit_breaker_service_server::SERVICE_NAME,
            crate::metering::usage_service_server::SERVICE_NAME,
            crate::metering::metering_ingest_service_server::SERVICE_NAME,
        ] {
            assert!(names.iter().any(|name| name == expected), "{expected}");
        }
    }
}
