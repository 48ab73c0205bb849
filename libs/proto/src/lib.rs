//! Generated code for every Tyboo contract, and the descriptor set that server
//! reflection and the edge's HTTP/JSON transcoder read.

/// The encoded `FileDescriptorSet` of every contract and its imports, with
/// custom options (such as `google.api.http`) preserved.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tyboo_descriptor.bin"));

pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
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
}

pub use tyboo::common::v1 as common;
pub use tyboo::executor::v1 as executor;
pub use tyboo::tenancy::v1 as tenancy;
pub use tyboo::vault::v1 as vault;
