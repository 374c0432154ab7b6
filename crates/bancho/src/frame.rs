//! Packet framing: `u16 id (LE), u8 0, u32 payload length (LE), payload`.
//!
//! Decoding works on a byte slice and tells "need more bytes" (`Ok(None)`) apart from
//! "invalid" (`Err`), checking the announced length against [`MAX_PAYLOAD_LEN`] before
//! anything else.

use crate::DecodeError;

/// Size of the packet header in bytes.
pub const HEADER_LEN: usize = 7;

/// The largest payload accepted in either direction. The biggest legitimate packets are
/// spectator frame bundles, which stay well under this.
pub const MAX_PAYLOAD_LEN: usize = 1 << 20;

/// One packet as it sits in a buffer: its id and a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub id: u16,
    pub payload: &'a [u8],
}

impl<'a> Frame<'a> {
    /// Parses the frame at the start of `buf`. Returns the frame and the bytes it used, or
    /// `Ok(None)` when `buf` holds only part of a frame.
    pub fn parse(buf: &'a [u8]) -> Result<Option<(Frame<'a>, usize)>, DecodeError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let id = u16::from_le_bytes([header[0], header[1]]);
        let len = u32::from_le_bytes([header[3], header[4], header[5], header[6]]) as usize;
        if len > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadTooLarge {
                len,
                max: MAX_PAYLOAD_LEN,
            });
        }
        match buf.get(HEADER_LEN..HEADER_LEN + len) {
            Some(payload) => Ok(Some((Frame { id, payload }, HEADER_LEN + len))),
            None => Ok(None),
        }
    }
}

/// How many frames `body` holds if it is nothing but empty packets with id `id` (an
/// idle client's poll is one bare PING), without decoding anything; `None` for any other
/// body. An empty body holds none.
pub fn count_bare(body: &[u8], id: u16) -> Option<usize> {
    let [lo, hi] = id.to_le_bytes();
    let bare = [lo, hi, 0, 0, 0, 0, 0];
    let frames = body.chunks(HEADER_LEN);
    (body.len().is_multiple_of(HEADER_LEN) && frames.clone().all(|f| f == bare))
        .then(|| frames.len())
}

/// Iterates over the frames of a complete body (an HTTP request or response). A partial
/// frame at the end is an error here, because no more bytes will come. Iteration stops
/// after the first error.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Frames<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, failed: false }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        match Frame::parse(self.buf) {
            Ok(Some((frame, used))) => {
                self.buf = &self.buf[used..];
                Some(Ok(frame))
            }
            Ok(None) => {
                self.failed = true;
                let needed = match self.buf.get(3..HEADER_LEN) {
                    Some(len) => {
                        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                        HEADER_LEN + len - self.buf.len()
                    }
                    None => HEADER_LEN - self.buf.len(),
                };
                Some(Err(DecodeError::UnexpectedEnd { needed }))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes a packet header with a placeholder length; [`finish_packet`] patches it.
pub(crate) fn begin_packet(out: &mut Vec<u8>, id: u16) -> usize {
    out.extend_from_slice(&id.to_le_bytes());
    out.push(0);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    at
}

/// Patches the length written by [`begin_packet`] at `len_at`.
pub(crate) fn finish_packet(out: &mut [u8], len_at: usize) {
    let len = out.len() - len_at - 4;
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bare_frames_are_counted_and_anything_else_is_not() {
        let ping = [4, 0, 0, 0, 0, 0, 0];
        assert_eq!(count_bare(&[], 4), Some(0));
        assert_eq!(count_bare(&ping, 4), Some(1));
        assert_eq!(count_bare(&ping.repeat(3), 4), Some(3));
        assert_eq!(count_bare(&ping, 5), None, "another id");
        assert_eq!(count_bare(&ping[..6], 4), None, "cut short");
        assert_eq!(
            count_bare(&[4, 0, 0, 1, 0, 0, 0, 9], 4),
            None,
            "with a payload"
        );
        let mut then_other = ping.repeat(2);
        then_other.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(count_bare(&then_other, 4), None);
    }

    #[test]
    fn parses_back_to_back_frames() {
        let body = [4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 1, 0, 0, 0, 9];
        let frames: Vec<_> = Frames::new(&body)
            .collect::<Result<_, _>>()
            .expect("valid frames");
        assert_eq!(
            frames,
            [
                Frame {
                    id: 4,
                    payload: &[]
                },
                Frame {
                    id: 3,
                    payload: &[9]
                }
            ]
        );
    }

    #[test]
    fn partial_frame_is_need_more_for_streams_and_error_for_bodies() {
        let body = [4, 0, 0, 5, 0, 0, 0, 1];
        assert_eq!(Frame::parse(&body), Ok(None));
        let all: Vec<_> = Frames::new(&body).collect();
        assert_eq!(all, [Err(DecodeError::UnexpectedEnd { needed: 4 })]);
    }

    #[test]
    fn oversized_length_is_rejected_from_the_header() {
        let body = [4, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Frame::parse(&body),
            Err(DecodeError::PayloadTooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn framing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut total = 0;
            for frame in Frames::new(&bytes) {
                match frame {
                    Ok(f) => total += HEADER_LEN + f.payload.len(),
                    Err(_) => break,
                }
            }
            prop_assert!(total <= bytes.len());
        }
    }
}
