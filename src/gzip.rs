//! One gzip member assembled from pieces, some of them deflated once and reused.
//!
//! A cached search answer is the same images and reports every time, between a few bytes
//! that change per request (the query echo, `cached`, `elapsed_ms`). Compressing the whole
//! answer per request would cost more than sending it plain; instead the fixed parts are
//! deflated once into [`Deflated`] segments, and each answer is one gzip member made of
//! those segments and of the changing bytes as stored (uncompressed) deflate blocks.
//!
//! This is valid deflate because every [`Deflated`] segment is compressed on its own (it
//! refers to nothing before it) and ends with a sync flush: its last block is not final and
//! it ends on a byte boundary, so a stored block or another segment can follow it. The CRC
//! of the whole member is combined from the CRCs of its parts, so nothing is read twice.

use bytes::Bytes;
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};

/// The deflate level of segments: they are compressed once and sent many times, so the
/// ratio matters more than the time (level 6 takes about 1 ms for a 130 kB page).
const LEVEL: u32 = 6;

/// The most a stored deflate block can hold.
const STORED_MAX: usize = u16::MAX as usize;

/// A gzip member's fixed header: deflate, no flags, no time, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty final stored block: ends the deflate stream.
const LAST_BLOCK: [u8; 5] = [1, 0, 0, 0xff, 0xff];

/// Raw deflate of some text, compressed on its own and ending with a sync flush, with the
/// CRC-32 and length of the text it stands for.
#[derive(Debug, Clone)]
pub struct Deflated {
    bytes: Bytes,
    crc: Hasher,
    text_len: u64,
}

impl Deflated {
    /// Deflates the concatenation of `pieces`.
    pub fn new<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> Deflated {
        let mut compress = Compress::new(Compression::new(LEVEL), false);
        let mut crc = Hasher::new();
        let mut out = Vec::new();
        for piece in pieces {
            crc.update(piece);
            deflate(&mut compress, piece, FlushCompress::None, &mut out);
        }
        deflate(&mut compress, &[], FlushCompress::Sync, &mut out);
        out.shrink_to_fit();
        Deflated {
            bytes: Bytes::from(out),
            crc,
            text_len: compress.total_in(),
        }
    }

    /// Bytes of compressed data held.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether no compressed data is held (never: even empty text leaves a flush block).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Feeds `input` to `compress` with `flush`, growing `out` until all of it is consumed and
/// the flush, if any, is complete (the compressor stopped with room to spare).
fn deflate(compress: &mut Compress, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(out.capacity().max(16 * 1024));
        }
        let before = compress.total_in();
        compress
            .compress_vec(input, out, flush)
            .expect("deflating memory into memory cannot fail");
        let used = usize::try_from(compress.total_in() - before).expect("fits the input");
        input = &input[used..];
        if input.is_empty() && out.len() < out.capacity() {
            return;
        }
    }
}

/// A part of a gzip member being assembled.
#[derive(Debug)]
pub enum Part<'a> {
    /// Text sent as stored blocks, copied: small, and different in every answer.
    Plain(&'a [u8]),
    /// Text deflated before, sent as it is held.
    Deflated(&'a Deflated),
}

/// The gzip member whose text is the parts' texts in order, as pieces to send one after
/// another: each deflated part as it is held, without copying, and between them one
/// buffer for each run of plain parts with the framing around them.
pub fn member<'a>(parts: impl IntoIterator<Item = Part<'a>>) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut framing = HEADER.to_vec();
    let mut crc = Hasher::new();
    let mut text_len = 0u64;
    for part in parts {
        match part {
            Part::Plain(text) => {
                crc.update(text);
                text_len += text.len() as u64;
                stored(text, &mut framing);
            }
            Part::Deflated(deflated) => {
                crc.combine(&deflated.crc);
                text_len += deflated.text_len;
                if !framing.is_empty() {
                    pieces.push(Bytes::from(std::mem::take(&mut framing)));
                }
                pieces.push(deflated.bytes.clone());
            }
        }
    }
    framing.extend_from_slice(&LAST_BLOCK);
    framing.extend_from_slice(&crc.finalize().to_le_bytes());
    // ISIZE is the length modulo 2^32, as RFC 1952 defines it.
    framing.extend_from_slice(&(text_len as u32).to_le_bytes());
    pieces.push(Bytes::from(framing));
    pieces
}

/// Appends `text` to `out` as non-final stored deflate blocks.
fn stored(text: &[u8], out: &mut Vec<u8>) {
    for block in text.chunks(STORED_MAX) {
        let len = block.len() as u16;
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(pieces: &[Bytes]) -> Vec<u8> {
        let member: Vec<u8> = pieces.iter().flat_map(|piece| piece.to_vec()).collect();
        let mut text = Vec::new();
        // GzDecoder checks the CRC and the length in the trailer, and reads one member only.
        let mut decoder = flate2::read::GzDecoder::new(&member[..]);
        decoder.read_to_end(&mut text).expect("a valid gzip member");
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "nothing follows the member");
        text
    }

    fn json_like(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                format!("{{\"md5\":\"{i:032x}\",\"tags\":[\"anya_forger\",\"spy_x_family\"]}},")
            })
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn plain_and_deflated_parts_inflate_to_their_text_in_order() {
        let images = json_like(500);
        let reports = b"{\"danbooru\":{\"status\":\"ok\"}}".to_vec();
        let (images_z, reports_z) = (Deflated::new([&images[..]]), Deflated::new([&reports[..]]));
        let parts = [
            Part::Plain(b"{\"images\":["),
            Part::Deflated(&images_z),
            Part::Plain(b"],\"sources\":"),
            Part::Deflated(&reports_z),
            Part::Plain(b"}"),
        ];
        let mut expected = b"{\"images\":[".to_vec();
        expected.extend_from_slice(&images);
        expected.extend_from_slice(b"],\"sources\":");
        expected.extend_from_slice(&reports);
        expected.push(b'}');
        assert_eq!(gunzip(&member(parts)), expected);
        assert!(
            images_z.len() * 5 < images.len(),
            "repetitive text compresses"
        );
    }

    #[test]
    fn a_segment_made_of_several_pieces_is_their_concatenation() {
        let (a, b) = (json_like(40), json_like(7));
        let deflated = Deflated::new([&a[..], b",", &b[..]]);
        let text = gunzip(&member([Part::Deflated(&deflated)]));
        assert_eq!(text, [&a[..], b",", &b[..]].concat());
    }

    #[test]
    fn plain_text_longer_than_a_stored_block_is_split() {
        let text: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let pieces = member([Part::Plain(&text)]);
        assert_eq!(gunzip(&pieces), text);
        let sent: usize = pieces.iter().map(Bytes::len).sum();
        assert_eq!(sent, 10 + 4 * 5 + text.len() + 5 + 8, "four stored blocks");
    }

    #[test]
    fn empty_parts_and_an_empty_member_are_valid() {
        let empty = Deflated::new([]);
        assert!(!empty.is_empty(), "the flush block is there");
        assert!(gunzip(&member([])).is_empty());
        let parts = [Part::Plain(b""), Part::Deflated(&empty), Part::Plain(b"x")];
        assert_eq!(gunzip(&member(parts)), b"x");
    }

    #[test]
    fn one_segment_serves_many_members() {
        let images = json_like(100);
        let deflated = Deflated::new([&images[..]]);
        for n in 0..3 {
            let head = format!("{{\"n\":{n},\"images\":[");
            let text = gunzip(&member([
                Part::Plain(head.as_bytes()),
                Part::Deflated(&deflated),
                Part::Plain(b"]}"),
            ]));
            assert_eq!(text, [head.as_bytes(), &images[..], b"]}"].concat());
        }
    }
}
