//! The error type every service declares the same way. The variants a
//! caller's fault or a fault of ours can take (and their codes), the answer
//! for a refused token, and the one conversion to a gRPC status are written
//! here once; a service adds only the variants of its own backends.

/// Declares a service's one error type, `$name`, with its `Result` alias.
///
/// Every such type has the core variants below, each with its gRPC code:
/// `InvalidArgument { field, message }` (shown as "field: message"),
/// `Unauthenticated`, `PermissionDenied`, `NotFound(what)` (shown as "what
/// not found"), `AlreadyExists`, `FailedPrecondition`, `Aborted`,
/// `ResourceExhausted`, `Unavailable`, `Config` (shown as "invalid
/// configuration: …"), `Database` (from `sea_orm::DbErr`; UNAVAILABLE when
/// the database cannot be reached, INTERNAL otherwise) and `Internal`.
/// `extra` adds the service's own variants, `code` gives theirs, and
/// `status`, if present, answers some of them with a status of its own
/// instead of [`service_status`](crate::error::service_status)'s.
///
/// It also gives `$name::invalid(field, message)`, `$name::code()`,
/// `From<tyboo_auth::AuthError>` (a refused token keeps its code and
/// message; anything else is internal), `From<PageError>` (as
/// INVALID_ARGUMENT) and `From<$name> for tonic::Status`,
/// with `$service` naming the service in the logs and `$backend` what is
/// down when a call is unavailable. The crate using it depends on
/// `thiserror`, `sea-orm`, `tonic`, `tyboo-auth` and `tyboo-store`.
#[macro_export]
macro_rules! service_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident, result $result:ident, service $service:literal, backend $backend:literal {
            extra {
                $($extra:tt)*
            }
            code {
                $($code_pattern:pat => $code:expr),* $(,)?
            }
            $(status($status_error:ident) {
                $($status_pattern:pat => $status:expr),* $(,)?
            })?
        }
    ) => {
        pub type $result<T> = Result<T, $name>;

        $(#[$meta])*
        #[derive(Debug, ::thiserror::Error)]
        pub enum $name {
            /// A request field is malformed; the message starts with the
            /// field's path.
            #[error("{field}: {message}")]
            InvalidArgument { field: String, message: String },
            #[error("{0}")]
            Unauthenticated(String),
            #[error("{0}")]
            PermissionDenied(String),
            /// What was not found, e.g. "workspace". Also the answer for
            /// things the caller may not see, so existence never leaks.
            #[error("{0} not found")]
            NotFound(&'static str),
            #[error("{0}")]
            AlreadyExists(String),
            #[error("{0}")]
            FailedPrecondition(String),
            /// A concurrent change won, e.g. a compare-and-set that is stale.
            #[error("{0}")]
            Aborted(String),
            #[error("{0}")]
            ResourceExhausted(String),
            /// A service this call depends on cannot be reached now.
            #[error("{0}")]
            Unavailable(String),
            #[error("invalid configuration: {0}")]
            Config(String),
            #[error("database: {0}")]
            Database(#[from] ::sea_orm::DbErr),
            /// A fault of ours; the message is logged, never shown.
            #[error("{0}")]
            Internal(String),
            $($extra)*
        }

        impl $name {
            pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
                $name::InvalidArgument {
                    field: field.into(),
                    message: message.into(),
                }
            }

            pub fn code(&self) -> ::tonic::Code {
                match self {
                    $name::InvalidArgument { .. } => ::tonic::Code::InvalidArgument,
                    $name::Unauthenticated(_) => ::tonic::Code::Unauthenticated,
                    $name::PermissionDenied(_) => ::tonic::Code::PermissionDenied,
                    $name::NotFound(_) => ::tonic::Code::NotFound,
                    $name::AlreadyExists(_) => ::tonic::Code::AlreadyExists,
                    $name::FailedPrecondition(_) => ::tonic::Code::FailedPrecondition,
                    $name::Aborted(_) => ::tonic::Code::Aborted,
                    $name::ResourceExhausted(_) => ::tonic::Code::ResourceExhausted,
                    $name::Unavailable(_) => ::tonic::Code::Unavailable,
                    $name::Config(_) | $name::Internal(_) => ::tonic::Code::Internal,
                    $name::Database(error) if ::tyboo_store::is_unavailable(error) => {
                        ::tonic::Code::Unavailable
                    }
                    $name::Database(_) => ::tonic::Code::Internal,
                    $($code_pattern => $code,)*
                }
            }
        }

        impl From<::tyboo_auth::AuthError> for $name {
            fn from(error: ::tyboo_auth::AuthError) -> Self {
                match error.into_code_and_message() {
                    (::tonic::Code::Unauthenticated, message) => $name::Unauthenticated(message),
                    (::tonic::Code::PermissionDenied, message) => {
                        $name::PermissionDenied(message)
                    }
                    (_, message) => $name::Internal(message),
                }
            }
        }

        impl From<$crate::pagination::PageError> for $name {
            fn from(error: $crate::pagination::PageError) -> Self {
                $name::invalid(error.field, error.message)
            }
        }

        impl From<$name> for ::tonic::Status {
            fn from(error: $name) -> Self {
                $(
                    let $status_error = &error;
                    match $status_error {
                        $($status_pattern => return $status,)*
                        _ => {}
                    }
                )?
                $crate::error::service_status($service, $backend, error.code(), &error)
            }
        }
    };
}
