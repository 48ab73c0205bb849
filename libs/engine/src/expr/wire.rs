//! What a worker and its expression sandbox processes say to each other over the
//! child's stdin and stdout: frames of a 4-byte big-endian length and that many bytes of
//! JSON. The child first sends [`Ready`], then answers each [`Request`] with one
//! [`Reply`], in order.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::jq::Exhausted;
use super::{ExpressionLimits, ProgramSource};
use crate::error::{ErrorClass, NodeError};
use crate::graph::NodeSpec;

/// The largest frame the length prefix can describe.
const MAX_FRAME_BYTES: usize = u32::MAX as usize;

/// Writes one frame and flushes it.
pub(crate) fn write_frame(writer: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a frame of {} bytes is too large", payload.len()),
        )
    })?;
    writer.write_all(&length.to_be_bytes())?;
    writer.write_all(payload)?;
    writer.flush()
}

/// Reads one frame of at most `max_bytes`; `None` when the stream ends between frames.
/// The buffer is reserved fallibly, so a frame too large for the memory at hand is an
/// error rather than an abort.
pub(crate) fn read_frame(reader: &mut impl Read, max_bytes: usize) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    let mut filled = 0;
    while filled < header.len() {
        match reader.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let length = u32::from_be_bytes(header) as usize;
    if length > max_bytes.min(MAX_FRAME_BYTES) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {length} bytes exceeds the {max_bytes}-byte limit"),
        ));
    }
    let mut payload = Vec::new();
    payload
        .try_reserve_exact(length)
        .map_err(|_| io::Error::new(io::ErrorKind::OutOfMemory, "no memory for the frame"))?;
    let read = reader.take(length as u64).read_to_end(&mut payload)?;
    if read < length {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Some(payload))
}

/// The child's first frame, once its limit is in place.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Ready {
    /// Address space the idle child holds; its limit is this plus the memory cap.
    pub address_space_bytes: u64,
    pub limit_bytes: u64,
}

/// One evaluation, as the worker sends it.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Request<'r> {
    Render {
        node: &'r NodeSpec,
        document: &'r Value,
        limits: &'r ExpressionLimits,
    },
    Programs {
        node_id: &'r str,
        programs: &'r [ProgramSource],
        document: &'r Value,
        limits: &'r ExpressionLimits,
    },
}

/// One evaluation, as the child reads it.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ReceivedRequest {
    Render {
        node: NodeSpec,
        document: Value,
        limits: ExpressionLimits,
    },
    Programs {
        node_id: String,
        programs: Vec<ProgramSource>,
        document: Value,
        limits: ExpressionLimits,
    },
}

/// The outcome of one evaluation.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Reply {
    Rendered(Value),
    Evaluated(Vec<Vec<Value>>),
    /// The program failed on its own terms (does not compile, raised an error, result
    /// too large): the node error as the in-process evaluator would have made it.
    Failed(WireNodeError),
    Exhausted(Exhausted),
    Crashed,
    /// The request could not be read or served by this child.
    Refused(String),
}

/// A [`NodeError`] on the wire; expression errors carry no `Retry-After`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireNodeError {
    pub class: ErrorClass,
    pub message: String,
    pub parameter: Option<String>,
}

impl From<NodeError> for WireNodeError {
    fn from(error: NodeError) -> WireNodeError {
        let NodeError {
            class,
            message,
            retry_after: _,
            parameter,
            park_until: _,
        } = error;
        WireNodeError {
            class,
            message,
            parameter,
        }
    }
}

impl WireNodeError {
    pub(crate) fn into_node_error(self) -> NodeError {
        let error = NodeError::new(self.class, self.message);
        match self.parameter {
            Some(parameter) => error.with_parameter(parameter),
            None => error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly_between_frames() {
        let mut stream = Vec::new();
        write_frame(&mut stream, b"{\"a\":1}").expect("writes");
        write_frame(&mut stream, b"").expect("writes");
        assert_eq!(&stream[..4], &[0, 0, 0, 7]);
        let mut reader = stream.as_slice();
        assert_eq!(
            read_frame(&mut reader, 1024).expect("reads"),
            Some(b"{\"a\":1}".to_vec())
        );
        assert_eq!(
            read_frame(&mut reader, 1024).expect("reads"),
            Some(Vec::new())
        );
        assert_eq!(read_frame(&mut reader, 1024).expect("reads"), None);
    }

    #[test]
    fn a_frame_over_the_limit_or_cut_short_is_an_error() {
        let mut stream = Vec::new();
        write_frame(&mut stream, &[b'x'; 100]).expect("writes");
        let too_large = read_frame(&mut stream.as_slice(), 99).expect_err("over the limit");
        assert_eq!(too_large.kind(), io::ErrorKind::InvalidData);
        let cut_short = read_frame(&mut &stream[..50], 1024).expect_err("cut short");
        assert_eq!(cut_short.kind(), io::ErrorKind::UnexpectedEof);
        let cut_header = read_frame(&mut &stream[..2], 1024).expect_err("cut header");
        assert_eq!(cut_header.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn node_errors_keep_class_message_and_parameter_on_the_wire() {
        let error =
            NodeError::permanent("node `t` parameter `program`: boom").with_parameter("program");
        let encoded = serde_json::to_vec(&Reply::Failed(error.clone().into())).expect("encodes");
        let Reply::Failed(decoded) = serde_json::from_slice(&encoded).expect("decodes") else {
            panic!("a failure")
        };
        assert_eq!(decoded.into_node_error(), error);
    }
}
