//! Wire compatibility with tokio-util's `LengthDelimitedCodec::new()`, the reference peer: the
//! codec is driven synchronously (Encoder/Decoder on a `BytesMut`) over a plain std socket and
//! exchanges messages with msgsock both ways, on both families; and msgsock writes exactly the
//! bytes the codec encodes.

mod common;

use std::io::{Read, Write};
use std::thread;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

use msgsock::{TcpTransport, UnixTransport};

use crate::common::{guard_timeouts, pattern, read_exact_vec, RawConnect};

/// Messages under the codec's 8 MiB default limit: empty, tiny, UTF-8, page-sized, past 1 MiB.
fn messages() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        b"x".to_vec(),
        "héllo, 世界".as_bytes().to_vec(),
        pattern(4096, 1),
        pattern(65536, 2),
        pattern((1 << 20) + 1, 3),
    ]
}

fn encode(codec: &mut LengthDelimitedCodec, msg: &[u8]) -> BytesMut {
    let mut out = BytesMut::new();
    codec
        .encode(Bytes::copy_from_slice(msg), &mut out)
        .expect("encode");
    out
}

/// The codec writes, msgsock receives.
fn codec_to_msgsock<T: RawConnect>() {
    let listener = T::bind_ephemeral().unwrap();
    let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
    let mut server = T::accept(&listener).unwrap();
    guard_timeouts(&server);
    let writer = thread::spawn(move || {
        let mut codec = LengthDelimitedCodec::new();
        let mut out = BytesMut::new();
        for msg in messages() {
            codec.encode(Bytes::from(msg), &mut out).unwrap();
        }
        raw.write_all(&out).unwrap();
        T::raw_shutdown_write(&raw);
        raw
    });
    for (i, want) in messages().into_iter().enumerate() {
        let got = server.recv().unwrap().expect("a message");
        assert!(got == want, "message {i}: got {} bytes", got.len());
    }
    assert_eq!(server.recv().unwrap(), None, "clean close");
    writer.join().unwrap();
}

/// msgsock writes, the codec decodes.
fn msgsock_to_codec<T: RawConnect>() {
    let listener = T::bind_ephemeral().unwrap();
    let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
    let mut server = T::accept(&listener).unwrap();
    guard_timeouts(&server);
    let sender = thread::spawn(move || {
        for msg in messages() {
            server.send(&msg).unwrap();
        }
        // Dropping the connection closes it: the codec sees a clean end.
    });
    let mut codec = LengthDelimitedCodec::new();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        while let Some(frame) = codec.decode(&mut buf).expect("decode") {
            got.push(frame.to_vec());
        }
        let n = raw.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(codec.decode_eof(&mut buf).expect("no partial frame"), None);
    sender.join().unwrap();
    common::assert_same_messages(&got, &messages());
}

/// The bytes msgsock puts on the wire for each message are exactly the codec's encoding.
fn same_bytes_on_the_wire<T: RawConnect>() {
    let listener = T::bind_ephemeral().unwrap();
    let mut raw = T::raw_connect(&T::local_addr(&listener).unwrap());
    let mut server = T::accept(&listener).unwrap();
    guard_timeouts(&server);
    let mut codec = LengthDelimitedCodec::new();
    for (i, msg) in messages().into_iter().enumerate() {
        let want = encode(&mut codec, &msg);
        let sender = thread::spawn(move || {
            server.send(&msg).unwrap();
            server
        });
        let got = read_exact_vec(&mut raw, want.len()).unwrap();
        server = sender.join().unwrap();
        assert!(
            got == want[..],
            "message {i}: msgsock's frame differs from the codec's"
        );
        assert!(
            got == common::frame(&messages()[i]),
            "message {i}: differs from msgsock::frame::Header"
        );
    }
    drop(server);
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{} bytes more than the codec's",
        rest.len()
    );
}

#[test]
fn unix_codec_to_msgsock() {
    codec_to_msgsock::<UnixTransport>();
}

#[test]
fn tcp_codec_to_msgsock() {
    codec_to_msgsock::<TcpTransport>();
}

#[test]
fn unix_msgsock_to_codec() {
    msgsock_to_codec::<UnixTransport>();
}

#[test]
fn tcp_msgsock_to_codec() {
    msgsock_to_codec::<TcpTransport>();
}

#[test]
fn unix_same_bytes_on_the_wire() {
    same_bytes_on_the_wire::<UnixTransport>();
}

#[test]
fn tcp_same_bytes_on_the_wire() {
    same_bytes_on_the_wire::<TcpTransport>();
}
