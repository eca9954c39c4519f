//! Arbitrary bytes into the header decoder and the protocol core's `Decoder`, with no socket: no
//! panic, and every answer agrees with the bytes. The first input byte picks the message limit
//! and whether reads go into lent memory, the second the size of the pieces the input is fed in.

#![no_main]

use libfuzzer_sys::fuzz_target;
use msgsock::frame::{decode_header, Decoded, Header};
use msgsock::proto::{Decode, Decoder, FrameError, RECV_BUF_LEN};
use msgsock::DEFAULT_MAX_MESSAGE_LEN;

fuzz_target!(|data: &[u8]| {
    let [pick, piece, bytes @ ..] = data else {
        return;
    };
    // The top bit: reads into lent memory; the rest picks the limit.
    let lend = *pick & 0x80 != 0;
    let limit = match *pick & 0x7f {
        0 => u64::MAX,
        1 => DEFAULT_MAX_MESSAGE_LEN,
        n => u64::from(n) * 64,
    };
    // 1 to 255 bytes a feed, or everything at once.
    let chunk = if *piece == 0 { bytes.len().max(1) } else { usize::from(*piece) };
    check_header(bytes, limit);
    check_decoder(bytes, limit, chunk, lend);
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
        Err(FrameError::TooLarge { len, max }) => {
            assert_eq!(max, limit);
            assert!(len > max);
        }
        Err(FrameError::Malformed { .. }) => {}
        Err(e) => panic!("decode_header: unexpected {e:?}"),
    }
}

/// The same bytes through the protocol core, fed in pieces of `chunk` bytes (with `lend`, into
/// memory of the driver's own while the decoder holds no buffer, as the socket drivers read):
/// the frames it returns, re-encoded, are exactly a prefix of the input, and what stops it is a
/// clean close at the end or the error the rest deserves.
fn check_decoder(bytes: &[u8], limit: u64, chunk: usize, lend: bool) {
    let mut decoder = Decoder::new(limit);
    let mut consumed = 0usize;
    let mut fed = 0usize;
    let mut buf = Vec::new();
    // The decode after a read into lent memory, in place of the next `decode`.
    let mut lent = None;
    loop {
        let decoded = lent.take().unwrap_or_else(|| decoder.decode(&mut buf));
        let err = match decoded {
            Ok(Decode::Message(n)) => {
                assert_eq!(n, buf.len());
                let header = Header::new(n as u64);
                let end = consumed + header.len() + n;
                assert!(end <= fed, "a frame past the bytes fed");
                assert_eq!(&*header, &bytes[consumed..consumed + header.len()]);
                assert_eq!(&buf[..], &bytes[consumed + header.len()..end]);
                consumed = end;
                continue;
            }
            Ok(Decode::NeedRead) if fed < bytes.len() && lend && decoder.wants_buffer() => {
                let piece = &bytes[fed..(fed + chunk).min(bytes.len())];
                let mut spare = [0u8; RECV_BUF_LEN];
                let mut n = 0;
                for dst in decoder.read_bufs_lent(&mut spare) {
                    let take = dst.len().min(piece.len() - n);
                    dst[..take].copy_from_slice(&piece[n..n + take]);
                    n += take;
                }
                assert!(n > 0, "no room offered");
                decoder.advance(n);
                fed += n;
                lent = Some(decoder.decode_lent(&spare, &mut buf, None));
                continue;
            }
            Ok(Decode::NeedRead) if fed < bytes.len() => {
                let n = decoder.feed(&bytes[fed..(fed + chunk).min(bytes.len())]);
                assert!(n > 0, "no room offered");
                fed += n;
                continue;
            }
            Ok(Decode::NeedRead) => match decoder.eof() {
                Ok(()) => {
                    assert_eq!(consumed, bytes.len(), "clean close before the end");
                    return;
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        let rest = &bytes[consumed..];
        match (err, decode_header(rest, limit)) {
            (FrameError::TooLarge { len, max }, Err(FrameError::TooLarge { len: l, max: m })) => {
                assert_eq!((len, max), (l, m))
            }
            (FrameError::Malformed { header }, Err(FrameError::Malformed { header: h })) => {
                assert_eq!(header, h)
            }
            (FrameError::UnexpectedEof { read, expected }, _) => {
                assert_eq!(read, rest.len() as u64);
                assert!(read < expected);
            }
            (e, d) => panic!("{e:?} where the header decoder says {d:?}"),
        }
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::Broken));
        return;
    }
}
