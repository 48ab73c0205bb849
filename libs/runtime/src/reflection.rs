//! Server reflection (v1 and v1alpha, so every grpcurl works) that lists
//! exactly what one server serves: its own services, `grpc.health.v1.Health`
//! and the two reflection services.
//!
//! Every server reads the same descriptor set of all contracts, so without a
//! list of names reflection would offer all of them on every port, and a
//! caller would pick a service the port answers only with `UNIMPLEMENTED`.

use tonic_reflection::server::Builder;

/// `grpc.health.v1.Health`, served next to every server's own services.
pub const HEALTH_SERVICE: &str = tonic_health::pb::health_server::SERVICE_NAME;
/// `grpc.reflection.v1.ServerReflection`.
pub const REFLECTION_V1_SERVICE: &str =
    tonic_reflection::pb::v1::server_reflection_server::SERVICE_NAME;
/// `grpc.reflection.v1alpha.ServerReflection`.
pub const REFLECTION_V1ALPHA_SERVICE: &str =
    tonic_reflection::pb::v1alpha::server_reflection_server::SERVICE_NAME;

/// What reflection lists on a server that serves `served`: those, health and
/// both reflection services, sorted.
pub fn listed_services(served: &[&str]) -> Vec<String> {
    let mut listed: Vec<String> = served
        .iter()
        .copied()
        .chain([
            HEALTH_SERVICE,
            REFLECTION_V1_SERVICE,
            REFLECTION_V1ALPHA_SERVICE,
        ])
        .map(str::to_owned)
        .collect();
    listed.sort();
    listed.dedup();
    listed
}

// The descriptor sets are compiled into the binary, so building reflection
// from them cannot fail at run time unless the build itself is broken.

/// `grpc.reflection.v1` for a server that serves `served`.
pub fn v1(
    served: &[&str],
) -> tonic_reflection::server::v1::ServerReflectionServer<
    impl tonic_reflection::server::v1::ServerReflection,
> {
    builder(served)
        .build_v1()
        .expect("embedded descriptor sets decode")
}

/// `grpc.reflection.v1alpha` for a server that serves `served`.
pub fn v1alpha(
    served: &[&str],
) -> tonic_reflection::server::v1alpha::ServerReflectionServer<
    impl tonic_reflection::server::v1alpha::ServerReflection,
> {
    builder(served)
        .build_v1alpha()
        .expect("embedded descriptor sets decode")
}

fn builder(served: &[&str]) -> Builder<'static> {
    // Both reflection protos are registered in both versions, so a client
    // can resolve every service either version lists.
    let mut builder = Builder::configure()
        .register_encoded_file_descriptor_set(tyboo_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET);
    // Never empty (health is always listed), so the builder never falls
    // back to listing every service of the descriptor sets.
    for name in listed_services(served) {
        builder = builder.with_service_name(name);
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_lists_its_services_health_and_reflection() {
        assert_eq!(
            listed_services(&["tyboo.vault.v1.CredentialService"]),
            vec![
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
                "tyboo.vault.v1.CredentialService",
            ]
        );
    }
}
