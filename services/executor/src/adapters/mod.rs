//! What the domain asks of other services, spoken over gRPC. The domain
//! names only its own ports (traits); these are their implementations.

pub mod audit;
pub mod vault;
