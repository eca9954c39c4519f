//! Arbitrary bytes into the frame decoder, alone and behind a `Connection`: no panic, and every
//! answer agrees with the bytes. The first input byte picks the message limit.

#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;
use msgsock::frame::{decode_header, Decoded, Header};
use msgsock::{Connection, Error, UnixStream, DEFAULT_MAX_MESSAGE_LEN};

/// Inputs are written to the socket before reading, so they must fit its buffer.
const MAX_INPUT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let limit = match pick {
        0 => u64::MAX,
        1 => DEFAULT_MAX_MESSAGE_LEN,
        n => u64::from(n) * 64,
    };
    let bytes = &bytes[..bytes.len().min(MAX_INPUT)];
    check_header(bytes, limit);
    check_connection(bytes, limit);
});

/// `decode_header` alone: a decoded prefix re-encodes to the same bytes and respects the limit.
fn check_header(bytes: &[u8], limit: u64) {
    match decode_header(bytes, limit) {
        Ok(Decoded::Header {
            header_len,
            payload_len,
        }) => {
            assert!(payload_len <= limit);
            assert_eq!(&*Header::new(payload_len), &bytes[..header_len]);
        }
        Ok(Decoded::NeedMore(need)) => {
            assert!(need == 4 || need == 12, "need {need}");
            assert!(bytes.len() < need);
        }
        Err(Error::FrameTooLarge { len, max }) => {
            assert_eq!(max, limit);
            assert!(len > max);
        }
        Err(Error::MalformedHeader { .. }) => {}
        Err(e) => panic!("decode_header: unexpected {e:?}"),
    }
}

/// The same bytes through a `Connection`: the frames it returns, re-encoded, are exactly a prefix
/// of the input, and what stops it is a clean close at the end or the error the rest deserves.
fn check_connection(bytes: &[u8], limit: u64) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let mut raw = b.into_inner();
    raw.write_all(bytes)
        .expect("the input fits the socket buffer");
    drop(raw);
    let mut conn = Connection::new(a).with_max_message_len(limit);
    let mut consumed = 0usize;
    let mut buf = Vec::new();
    loop {
        match conn.recv_into(&mut buf) {
            Ok(Some(n)) => {
                assert_eq!(n, buf.len());
                let header = Header::new(n as u64);
                let end = consumed + header.len() + n;
                assert!(end <= bytes.len(), "a frame past the input");
                assert_eq!(&*header, &bytes[consumed..consumed + header.len()]);
                assert_eq!(&buf[..], &bytes[consumed + header.len()..end]);
                consumed = end;
            }
            Ok(None) => {
                assert_eq!(consumed, bytes.len(), "clean close before the end");
                return;
            }
            Err(e) => {
                let rest = &bytes[consumed..];
                match (&e, decode_header(rest, limit)) {
                    (
                        Error::FrameTooLarge { len, max },
                        Err(Error::FrameTooLarge { len: l, max: m }),
                    ) => assert_eq!((*len, *max), (l, m)),
                    (
                        Error::MalformedHeader { header },
                        Err(Error::MalformedHeader { header: h }),
                    ) => {
                        assert_eq!(*header, h)
                    }
                    (Error::UnexpectedEof { read, expected }, _) => {
                        assert_eq!(*read, rest.len() as u64);
                        assert!(read < expected);
                    }
                    (e, d) => panic!("{e:?} where the decoder says {d:?}"),
                }
                assert!(matches!(conn.recv_into(&mut buf), Err(Error::Broken)));
                return;
            }
        }
    }
}
