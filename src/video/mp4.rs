//! MP4 (ISO BMFF) for H.264 without re-encoding: the init segment and media fragments of a
//! fragmented MP4 (what the recorder appends while a clip grows and what Media Source Extensions
//! play live), and `finish`, which turns a fragmented file, possibly cut short by a crash, into a
//! fast-start MP4 (moov before one mdat) by streaming its samples. Samples are stored with 4-byte
//! length prefixes; SPS and PPS live in the avcC box. Fragments carry decoding times only; for
//! streams with B-frames `finish` adds the composition offsets (ctts, and an edit list so that
//! the first picture is shown at 0) from the pictures' order counts.

use std::io::{self, Read, Seek, SeekFrom, Write};

use super::h264::{self, nal};

/// Media timescale of the video track: 90 kHz, the RTP clock of H.264.
pub const TIMESCALE: u32 = 90_000;
const MOVIE_TIMESCALE: u32 = 1000;
const TRACK_ID: u32 = 1;
/// trun sample flags: depends on no other picture, sync sample.
const KEY_FLAGS: u32 = 0x0200_0000;
/// trun sample flags: depends on others, not a sync sample.
const NON_KEY_FLAGS: u32 = 0x0101_0000;
const NON_SYNC_BIT: u32 = 0x0001_0000;
/// The largest moov or moof read from an untrusted file (ours are well under a kilobyte).
const MAX_HEADER_BOX: u64 = 4 << 20;
/// The most samples one file may hold (about 150 hours at 30 fps): bounds the sample table.
const MAX_SAMPLES: usize = 1 << 24;
const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

/// The video track: picture size and the parameter sets (NAL payloads without start codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub width: u32,
    pub height: u32,
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
}

impl Track {
    /// From an access unit that carries SPS and PPS (a key frame); None if it has not both.
    pub fn from_au(annexb: &[u8]) -> Option<Track> {
        let nals = h264::nal_units(annexb);
        let sps = nals.iter().find(|n| h264::nal_type(n) == nal::SPS)?;
        let pps = nals.iter().find(|n| h264::nal_type(n) == nal::PPS)?;
        let info = h264::parse_sps(sps)?;
        let sizes = (4..=0xffff).contains(&sps.len()) && pps.len() <= 0xffff;
        let dims = (1..=0xffff).contains(&info.width) && (1..=0xffff).contains(&info.height);
        (sizes && dims).then(|| Track {
            width: info.width,
            height: info.height,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
        })
    }

    /// RFC 6381 codec string, e.g. "avc1.64001f" (profile, constraint flags, level from the SPS).
    pub fn codec(&self) -> String {
        let b = |i: usize| self.sps.get(i).copied().unwrap_or(0);
        format!("avc1.{:02x}{:02x}{:02x}", b(1), b(2), b(3))
    }
}

/// One access unit to put in a fragment.
pub struct Sample<'a> {
    /// Annex B, with start codes.
    pub au: &'a [u8],
    /// 90 kHz ticks until the next sample.
    pub duration: u32,
    pub key: bool,
    /// Presentation minus decoding time, 90 kHz ticks (non-zero for reordered B-frame streams;
    /// written only by [`fragment`]: [`finish`] works the offsets out from the pictures).
    pub composition_offset: i32,
}

/// What a fragmented file held (`summarize`) or a finished file holds (`finish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub samples: u32,
    pub duration_ms: u64,
    /// Bytes written by `finish`; for `summarize`, the length of the source that is valid.
    pub bytes: u64,
    pub first_is_key: bool,
}

#[derive(thiserror::Error, Debug)]
pub enum Mp4Error {
    #[error("MP4 i/o: {0}")]
    Io(#[from] io::Error),
    #[error("invalid MP4: {0}")]
    Invalid(String),
    #[error("the MP4 holds no complete video sample")]
    Empty,
}

// ---- writing boxes ----

trait Put {
    fn p16(&mut self, v: u16);
    fn p32(&mut self, v: u32);
    fn p64(&mut self, v: u64);
}

impl Put for Vec<u8> {
    fn p16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn p32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn p64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a box whose body `body` writes; the size is patched in afterwards.
fn bx(o: &mut Vec<u8>, kind: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    let start = o.len();
    o.p32(0);
    o.extend_from_slice(kind);
    body(o);
    let size = u32::try_from(o.len() - start).unwrap_or(u32::MAX);
    o[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

fn full(o: &mut Vec<u8>, kind: &[u8; 4], version: u8, flags: u32, body: impl FnOnce(&mut Vec<u8>)) {
    bx(o, kind, |o| {
        o.p32((version as u32) << 24 | flags);
        body(o)
    })
}

fn ftyp(o: &mut Vec<u8>, compatible: &[&[u8; 4]]) {
    bx(o, b"ftyp", |o| {
        o.extend_from_slice(b"isom");
        o.p32(0x200);
        compatible.iter().for_each(|b| o.extend_from_slice(*b));
    })
}

/// A time or duration: 64-bit in version 1 boxes, else 32-bit.
fn time(o: &mut Vec<u8>, v1: bool, t: u64) {
    if v1 {
        o.p64(t)
    } else {
        o.p32(t as u32)
    }
}

/// What a moov describes. No samples: the empty tables and mvex of an init segment.
struct MoovSpec<'a> {
    width: u16,
    height: u16,
    timescale: u32,
    ticks: u64,
    entry: &'a [u8],
    samples: &'a [Rec],
    /// Samples per chunk (one chunk per source fragment).
    chunks: &'a [u32],
    /// File offset of the first sample byte.
    data_start: u64,
    co64: bool,
    /// Composition offsets per sample (empty: presented in decoding order) and the edit list's
    /// media time (the decoding lead of the first picture shown).
    offsets: &'a [u32],
    shift: u32,
}

fn moov(o: &mut Vec<u8>, m: &MoovSpec<'_>) {
    let ms = to_ms(m.ticks, m.timescale);
    bx(o, b"moov", |o| {
        let v1 = ms > u32::MAX as u64;
        full(o, b"mvhd", v1 as u8, 0, |o| {
            [0, 0].iter().for_each(|&t| time(o, v1, t)); // creation, modification
            o.p32(MOVIE_TIMESCALE);
            time(o, v1, ms);
            o.p32(0x0001_0000); // rate 1.0
            o.p16(0x0100); // volume 1.0
            o.extend_from_slice(&[0; 10]);
            MATRIX.iter().for_each(|&v| o.p32(v));
            o.extend_from_slice(&[0; 24]);
            o.p32(TRACK_ID + 1); // next_track_ID
        });
        bx(o, b"trak", |o| {
            full(o, b"tkhd", v1 as u8, 3, |o| {
                [0, 0].iter().for_each(|&t| time(o, v1, t));
                o.p64((TRACK_ID as u64) << 32); // track_ID, reserved
                time(o, v1, ms);
                o.extend_from_slice(&[0; 16]); // reserved, layer, group, volume, reserved
                MATRIX.iter().for_each(|&v| o.p32(v));
                o.p32((m.width as u32) << 16);
                o.p32((m.height as u32) << 16);
            });
            if m.shift > 0 {
                bx(o, b"edts", |o| {
                    full(o, b"elst", v1 as u8, 0, |o| {
                        o.p32(1);
                        time(o, v1, ms);
                        time(o, v1, m.shift as u64);
                        o.p32(0x0001_0000); // media rate 1.0
                    })
                });
            }
            bx(o, b"mdia", |o| {
                let v1 = m.ticks > u32::MAX as u64;
                full(o, b"mdhd", v1 as u8, 0, |o| {
                    [0, 0].iter().for_each(|&t| time(o, v1, t));
                    o.p32(m.timescale);
                    time(o, v1, m.ticks);
                    o.p16(0x55c4); // "und"
                    o.p16(0);
                });
                full(o, b"hdlr", 0, 0, |o| {
                    o.p32(0);
                    o.extend_from_slice(b"vide");
                    o.extend_from_slice(&[0; 12]);
                    o.extend_from_slice(b"VideoHandler\0");
                });
                bx(o, b"minf", |o| {
                    full(o, b"vmhd", 0, 1, |o| o.p64(0));
                    bx(o, b"dinf", |o| {
                        full(o, b"dref", 0, 0, |o| {
                            o.p32(1);
                            full(o, b"url ", 0, 1, |_| {});
                        })
                    });
                    bx(o, b"stbl", |o| stbl(o, m));
                });
            });
        });
        if m.samples.is_empty() {
            bx(o, b"mvex", |o| {
                full(o, b"trex", 0, 0, |o| {
                    [TRACK_ID, 1, 0, 0, 0].iter().for_each(|&v| o.p32(v));
                })
            });
        }
    })
}

/// A full box of u32s: `head`, then the number of rows and the rows.
fn table<const N: usize>(o: &mut Vec<u8>, kind: &[u8; 4], head: &[u32], rows: &[[u32; N]]) {
    full(o, kind, 0, 0, |o| {
        head.iter().for_each(|&v| o.p32(v));
        o.p32(rows.len() as u32);
        rows.iter().flatten().for_each(|&v| o.p32(v));
    })
}

/// Run-length rows (count, value), as stts and ctts store them.
fn runs(values: impl Iterator<Item = u32>) -> Vec<[u32; 2]> {
    let mut out: Vec<[u32; 2]> = Vec::new();
    for v in values {
        match out.last_mut() {
            Some([n, last]) if *last == v => *n += 1,
            _ => out.push([1, v]),
        }
    }
    out
}

fn stbl(o: &mut Vec<u8>, m: &MoovSpec<'_>) {
    full(o, b"stsd", 0, 0, |o| {
        o.p32(1);
        o.extend_from_slice(m.entry);
    });
    let s = m.samples;
    table(o, b"stts", &[], &runs(s.iter().map(|r| r.duration)));
    if !m.offsets.is_empty() {
        table(o, b"ctts", &[], &runs(m.offsets.iter().copied()));
    }
    if !s.is_empty() {
        // (An init segment has none: an empty stss would say no sample is a sync sample.)
        let keys: Vec<[u32; 1]> = (1..)
            .zip(s)
            .filter(|(_, r)| r.key)
            .map(|(i, _)| [i])
            .collect();
        table(o, b"stss", &[], &keys);
    }
    let sizes: Vec<[u32; 1]> = s.iter().map(|r| [r.size]).collect();
    table(o, b"stsz", &[0], &sizes);
    let mut stsc: Vec<[u32; 3]> = Vec::new(); // first chunk, samples per chunk, description
    for (chunk, &n) in (1..).zip(m.chunks) {
        if stsc.last().is_none_or(|&[_, m, _]| m != n) {
            stsc.push([chunk, n, 1]);
        }
    }
    table(o, b"stsc", &[], &stsc);
    full(o, if m.co64 { b"co64" } else { b"stco" }, 0, 0, |o| {
        o.p32(m.chunks.len() as u32);
        let (mut off, mut i) = (m.data_start, 0usize);
        for &n in m.chunks {
            time(o, m.co64, off);
            let n = n as usize;
            off += s[i..i + n].iter().map(|r| r.size as u64).sum::<u64>();
            i += n;
        }
    });
}

fn avc1_entry(t: &Track) -> Vec<u8> {
    let mut o = Vec::new();
    let sps = &t.sps[..t.sps.len().min(0xffff)];
    let pps = &t.pps[..t.pps.len().min(0xffff)];
    bx(&mut o, b"avc1", |o| {
        o.extend_from_slice(&[0; 6]);
        o.p16(1); // data_reference_index
        o.extend_from_slice(&[0; 16]);
        o.p16(t.width.min(0xffff) as u16);
        o.p16(t.height.min(0xffff) as u16);
        o.p32(0x0048_0000); // 72 dpi
        o.p32(0x0048_0000);
        o.p32(0);
        o.p16(1); // frame_count
        o.extend_from_slice(&[0; 32]); // compressorname
        o.p16(0x0018); // depth
        o.p16(0xffff); // pre_defined = -1
        bx(o, b"avcC", |o| {
            let b = |i: usize| sps.get(i).copied().unwrap_or(0);
            o.extend_from_slice(&[1, b(1), b(2), b(3), 0xff, 0xe1]);
            o.p16(sps.len() as u16);
            o.extend_from_slice(sps);
            o.push(1);
            o.p16(pps.len() as u16);
            o.extend_from_slice(pps);
        });
    });
    o
}

/// ftyp + moov with an avc1 sample entry, empty sample tables and mvex/trex: the initialisation
/// segment of a fragmented MP4 (also what MSE needs).
pub fn init_segment(t: &Track) -> Vec<u8> {
    let mut o = Vec::with_capacity(768);
    ftyp(&mut o, &[b"isom", b"iso6", b"avc1", b"mp41"]);
    let entry = avc1_entry(t);
    let spec = MoovSpec {
        width: t.width.min(0xffff) as u16,
        height: t.height.min(0xffff) as u16,
        timescale: TIMESCALE,
        ticks: 0,
        entry: &entry,
        samples: &[],
        chunks: &[],
        data_start: 0,
        co64: false,
        offsets: &[],
        shift: 0,
    };
    moov(&mut o, &spec);
    o
}

/// The AVCC form of an access unit: each NAL unit with a 4-byte length, AUD/SPS/PPS dropped.
fn avcc(au: &[u8], o: &mut Vec<u8>) {
    for n in h264::nal_units(au) {
        if !matches!(h264::nal_type(n), nal::AUD | nal::SPS | nal::PPS) {
            o.p32(n.len() as u32);
            o.extend_from_slice(n);
        }
    }
}

/// One fragment: moof (mfhd, traf with tfhd default-base-is-moof, tfdt, trun with data offset and
/// per-sample duration, size and flags) and the mdat of the samples in AVCC form.
pub fn fragment(seq: u32, base_decode_time: u64, samples: &[Sample<'_>]) -> Vec<u8> {
    let mut data = Vec::with_capacity(samples.iter().map(|s| s.au.len() + 16).sum());
    let mut sizes = Vec::with_capacity(samples.len());
    for s in samples {
        let before = data.len();
        avcc(s.au, &mut data);
        sizes.push((data.len() - before) as u32);
    }
    let mut o = Vec::with_capacity(data.len() + 100 + 12 * samples.len());
    let mut offset_at = 0;
    bx(&mut o, b"moof", |o| {
        full(o, b"mfhd", 0, 0, |o| o.p32(seq));
        bx(o, b"traf", |o| {
            full(o, b"tfhd", 0, 0x02_0000, |o| o.p32(TRACK_ID));
            full(o, b"tfdt", 1, 0, |o| o.p64(base_decode_time));
            // Version 1 (signed composition offsets) only when a sample is reordered.
            let cto = samples.iter().any(|s| s.composition_offset != 0);
            let (version, flags) = if cto { (1, 0xF01) } else { (0, 0x701) };
            full(o, b"trun", version, flags, |o| {
                o.p32(samples.len() as u32);
                offset_at = o.len();
                o.p32(0); // data_offset, patched below
                for (s, &size) in samples.iter().zip(&sizes) {
                    o.p32(s.duration);
                    o.p32(size);
                    o.p32(if s.key { KEY_FLAGS } else { NON_KEY_FLAGS });
                    if cto {
                        o.p32(s.composition_offset as u32);
                    }
                }
            });
        });
    });
    let data_offset = (o.len() + 8) as u32;
    o[offset_at..offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    o.p32(u32::try_from(data.len() + 8).unwrap_or(u32::MAX));
    o.extend_from_slice(b"mdat");
    o.extend_from_slice(&data);
    o
}

// ---- reading a fragmented file ----

struct Rd<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8]) -> Self {
        Rd { b, p: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn rest(&self) -> usize {
        self.b.len() - self.p
    }
    /// A u32 if the flag says it is there, else the default.
    fn opt(&mut self, present: bool, default: u32) -> Option<u32> {
        if present {
            self.u32()
        } else {
            Some(default)
        }
    }
}

/// The child boxes of a box body, as (type, body); ends at the first malformed one.
fn children(b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut p = 0;
    std::iter::from_fn(move || {
        let rest = b.get(p..)?;
        let mut r = Rd::new(rest);
        let size = r.u32()?;
        let kind: [u8; 4] = r.take(4)?.try_into().ok()?;
        let (hdr, size) = match size {
            0 => (8, rest.len() as u64),
            1 => (16, r.u64()?),
            s => (8, s as u64),
        };
        if size < hdr || size > rest.len() as u64 {
            return None;
        }
        p += size as usize;
        Some((kind, &rest[hdr as usize..size as usize]))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(b).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// One sample of the source: where its bytes are and what trun said about it.
#[derive(Debug, Clone, Copy)]
struct Rec {
    offset: u64,
    size: u32,
    duration: u32,
    key: bool,
}

/// trex defaults: duration, size, flags.
type Defaults = (u32, u32, u32);

struct Init {
    entry: Vec<u8>,
    width: u16,
    height: u16,
    timescale: u32,
    defaults: Defaults,
}

fn parse_moov(moov: &[u8]) -> Option<Init> {
    let mdia = children(moov)
        .filter(|(k, _)| k == b"trak")
        .filter_map(|(_, t)| child(t, b"mdia"))
        .find(|m| child(m, b"hdlr").and_then(|h| h.get(8..12)) == Some(b"vide"))?;
    let mdhd = child(mdia, b"mdhd")?;
    let at = if mdhd.first() == Some(&1) { 20 } else { 12 };
    let timescale = u32::from_be_bytes(mdhd.get(at..at + 4)?.try_into().ok()?);
    let stsd = child(child(child(mdia, b"minf")?, b"stbl")?, b"stsd")?;
    let entries = stsd.get(8..)?;
    let size = u32::from_be_bytes(entries.get(..4)?.try_into().ok()?) as usize;
    if timescale == 0 || size < 86 || size > entries.len() {
        return None;
    }
    let entry = entries[..size].to_vec();
    let width = u16::from_be_bytes([entry[32], entry[33]]);
    let height = u16::from_be_bytes([entry[34], entry[35]]);
    let defaults = child(moov, b"mvex")
        .and_then(|m| child(m, b"trex"))
        .and_then(|t| {
            let mut r = Rd::new(t.get(12..)?);
            Some((r.u32()?, r.u32()?, r.u32()?))
        })
        .unwrap_or((0, 0, 0));
    Some(Init {
        entry,
        width,
        height,
        timescale,
        defaults,
    })
}

/// The samples a moof describes (absolute file offsets), or None if it is malformed.
fn parse_moof(moof: &[u8], moof_start: u64, d: Defaults) -> Option<Vec<Rec>> {
    let traf = child(moof, b"traf")?;
    let mut r = Rd::new(child(traf, b"tfhd")?);
    let flags = r.u32()? & 0xff_ffff;
    r.u32()?; // track_ID
    let base = if flags & 0x1 != 0 {
        r.u64()?
    } else {
        moof_start
    };
    if flags & 0x2 != 0 {
        r.u32()?; // sample_description_index
    }
    let dur = r.opt(flags & 0x8 != 0, d.0)?;
    let size = r.opt(flags & 0x10 != 0, d.1)?;
    let sflags = r.opt(flags & 0x20 != 0, d.2)?;
    let mut out = Vec::new();
    let mut next = base;
    for (_, trun) in children(traf).filter(|(k, _)| k == b"trun") {
        let mut r = Rd::new(trun);
        let tf = r.u32()? & 0xff_ffff;
        let count = r.u32()? as usize;
        if tf & 0x1 != 0 {
            next = base.checked_add_signed(r.u32()? as i32 as i64)?;
        }
        let first_flags = if tf & 0x4 != 0 { Some(r.u32()?) } else { None };
        // Bytes per sample entry: 4 for each of duration, size, flags, composition offset.
        let per = (tf & 0xf00).count_ones() as usize * 4;
        if count > r.rest().checked_div(per).unwrap_or(1 << 16) {
            return None;
        }
        out.reserve(count);
        for i in 0..count {
            let duration = r.opt(tf & 0x100 != 0, dur)?;
            let size = r.opt(tf & 0x200 != 0, size)?;
            let mut f = r.opt(tf & 0x400 != 0, sflags)?;
            r.opt(tf & 0x800 != 0, 0)?; // composition offset: not used
            if i == 0 {
                f = first_flags.unwrap_or(f);
            }
            if size == 0 {
                return None;
            }
            out.push(Rec {
                offset: next,
                size,
                duration,
                key: f & NON_SYNC_BIT == 0,
            });
            next = next.checked_add(size as u64)?;
        }
    }
    Some(out)
}

struct Parsed {
    init: Init,
    samples: Vec<Rec>,
    /// Samples per fragment, in order.
    fragments: Vec<u32>,
    /// End of the last complete fragment.
    valid_end: u64,
}

struct Header {
    kind: [u8; 4],
    start: u64,
    body: u64,
    end: u64,
}

/// The header of the box at `pos`, or None if it is truncated or malformed.
fn header<R: Read + Seek>(src: &mut R, pos: u64, len: u64) -> io::Result<Option<Header>> {
    if len.saturating_sub(pos) < 8 {
        return Ok(None);
    }
    src.seek(SeekFrom::Start(pos))?;
    let mut h = [0u8; 16];
    let n = (len - pos).min(16) as usize;
    src.read_exact(&mut h[..n])?;
    let mut r = Rd::new(&h[..n]);
    let (size, kind) = (r.u32().unwrap_or(0), [h[4], h[5], h[6], h[7]]);
    let (body, size) = match size {
        0 => (8, len - pos),
        1 => match r.u64() {
            Some(large) => (16, large),
            None => return Ok(None),
        },
        s => (8, s as u64),
    };
    if size < body || size > len - pos {
        return Ok(None);
    }
    Ok(Some(Header {
        kind,
        start: pos,
        body: pos + body,
        end: pos + size,
    }))
}

fn read_body<R: Read + Seek>(src: &mut R, h: &Header) -> io::Result<Vec<u8>> {
    src.seek(SeekFrom::Start(h.body))?;
    let mut b = vec![0; (h.end - h.body) as usize];
    src.read_exact(&mut b)?;
    Ok(b)
}

/// Reads the init segment and every complete fragment up to the first truncated or invalid box.
fn parse<R: Read + Seek>(src: &mut R) -> Result<Parsed, Mp4Error> {
    let len = src.seek(SeekFrom::End(0))?;
    let (mut init, mut pending) = (None::<Init>, None::<Vec<Rec>>);
    let (mut samples, mut fragments) = (Vec::<Rec>::new(), Vec::new());
    let (mut pos, mut valid_end) = (0, 0);
    while let Some(h) = header(src, pos, len)? {
        if pending.is_some() && &h.kind != b"mdat" {
            break; // a moof without its mdat
        }
        match &h.kind {
            b"moov" if init.is_none() => {
                if h.end - h.body > MAX_HEADER_BOX {
                    return Err(Mp4Error::Invalid("moov too large".into()));
                }
                let i = parse_moov(&read_body(src, &h)?);
                init = Some(i.ok_or_else(|| Mp4Error::Invalid("no usable video track".into()))?);
                valid_end = h.end;
            }
            b"moof" => {
                let Some(i) = &init else { break };
                if h.end - h.body > MAX_HEADER_BOX {
                    break;
                }
                match parse_moof(&read_body(src, &h)?, h.start, i.defaults) {
                    Some(recs) => pending = Some(recs),
                    None => break,
                }
            }
            b"mdat" => {
                if let Some(recs) = pending.take() {
                    let inside = recs
                        .iter()
                        .all(|r| r.offset >= h.body && r.offset + r.size as u64 <= h.end);
                    let total: u64 = recs.iter().map(|r| r.size as u64).sum();
                    if !inside || total > h.end - h.body || samples.len() + recs.len() > MAX_SAMPLES
                    {
                        break;
                    }
                    if !recs.is_empty() {
                        fragments.push(recs.len() as u32);
                        samples.extend_from_slice(&recs);
                    }
                    valid_end = h.end;
                }
            }
            _ => {}
        }
        pos = h.end;
    }
    let init = init.ok_or_else(|| Mp4Error::Invalid("no complete moov".into()))?;
    if samples.is_empty() {
        return Err(Mp4Error::Empty);
    }
    Ok(Parsed {
        init,
        samples,
        fragments,
        valid_end,
    })
}

/// Ticks to milliseconds, rounded (a zero timescale gives 0).
fn to_ms(ticks: u64, timescale: u32) -> u64 {
    let ts = timescale as u128;
    ((ticks as u128 * 1000 + ts / 2).checked_div(ts).unwrap_or(0)) as u64
}

fn summary(p: &Parsed, bytes: u64) -> (Summary, u64) {
    let ticks: u64 = p.samples.iter().map(|r| r.duration as u64).sum();
    let s = Summary {
        samples: p.samples.len() as u32,
        duration_ms: to_ms(ticks, p.init.timescale),
        bytes,
        first_is_key: p.samples[0].key,
    };
    (s, ticks)
}

/// The SPS of an avc1 sample entry's avcC, if its NAL units have 4-byte lengths.
fn entry_sps(entry: &[u8]) -> Option<h264::SpsInfo> {
    let avcc = child(entry.get(86..)?, b"avcC")?;
    if avcc.get(4)? & 3 != 3 || avcc.get(5)? & 0x1f == 0 {
        return None;
    }
    let n = u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]) as usize;
    h264::parse_sps(avcc.get(8..8 + n)?)
}

/// The first bytes (header byte included) of a sample's first slice NAL unit.
fn first_slice<R: Read + Seek>(src: &mut R, r: &Rec) -> io::Result<Option<Vec<u8>>> {
    let (mut p, end) = (r.offset, r.offset + r.size as u64);
    let mut b = [0u8; 68];
    while end.saturating_sub(p) >= 5 {
        let n = (end - p).min(68) as usize;
        src.seek(SeekFrom::Start(p))?;
        src.read_exact(&mut b[..n])?;
        let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64;
        if len > 0 && (1..=5).contains(&(b[4] & 0x1f)) {
            return Ok(Some(b[4..n.min(4 + len.min(64) as usize)].to_vec()));
        }
        p += 4 + len;
    }
    Ok(None)
}

/// Composition offsets that present B-frame streams in picture order: from each IDR picture to
/// the next, the pictures take the same decoding times sorted by order count. Also the shift
/// that makes every offset non-negative. None if nothing is reordered or the order counts
/// cannot be read (presentation in decoding order, as before).
fn composition<R: Read + Seek>(src: &mut R, p: &Parsed) -> io::Result<Option<(Vec<u32>, u32)>> {
    let Some(sps) = entry_sps(&p.init.entry) else {
        return Ok(None);
    };
    let mut counter = h264::PocCounter::default();
    let (mut pocs, mut dts) = (Vec::new(), Vec::new());
    let mut t = 0i64;
    for r in &p.samples {
        let Some(slice) = first_slice(src, r)? else {
            return Ok(None);
        };
        let Some(poc) = counter.next(&sps, &slice) else {
            return Ok(None);
        };
        pocs.push((poc, h264::nal_type(&slice) == nal::IDR));
        dts.push(t);
        t += r.duration as i64;
    }
    let mut delta = vec![0i64; pocs.len()];
    let mut start = 0;
    for end in 1..=pocs.len() {
        if end == pocs.len() || pocs[end].1 {
            let mut order: Vec<usize> = (start..end).collect();
            order.sort_by_key(|&i| pocs[i].0);
            for (k, &i) in order.iter().enumerate() {
                delta[i] = dts[start + k] - dts[i];
            }
            start = end;
        }
    }
    let shift = -delta.iter().copied().min().unwrap_or(0).min(0);
    if delta.iter().all(|&d| d == 0) || shift > u32::MAX as i64 {
        return Ok(None);
    }
    let offsets: Option<Vec<u32>> = delta
        .iter()
        .map(|&d| u32::try_from(d + shift).ok())
        .collect();
    Ok(offsets.map(|o| (o, shift as u32)))
}

/// Rewrites a fragmented MP4 (init segment + fragments, as written by the recorder, possibly cut
/// short by a crash: everything from the first incomplete or invalid box on is ignored) as a
/// fast-start MP4: ftyp, moov with a full sample table (stts, stss, stsz, stsc, stco or co64,
/// durations in mvhd/tkhd/mdhd), then one mdat. Streams: memory is the sample table, not the video.
pub fn finish<R: Read + Seek, W: Write>(mut src: R, dst: W) -> Result<Summary, Mp4Error> {
    let p = parse(&mut src)?;
    let reorder = composition(&mut src, &p)?;
    let (_, ticks) = summary(&p, 0);
    let data: u64 = p.samples.iter().map(|r| r.size as u64).sum();
    let mut head = Vec::new();
    ftyp(&mut head, &[b"isom", b"iso2", b"avc1", b"mp41"]);
    let ftyp_len = head.len() as u64;
    let mdat_hdr = if data + 8 > u32::MAX as u64 { 16 } else { 8 };
    let build = |o: &mut Vec<u8>, data_start: u64, co64: bool| {
        let spec = MoovSpec {
            width: p.init.width,
            height: p.init.height,
            timescale: p.init.timescale,
            ticks,
            entry: &p.init.entry,
            samples: &p.samples,
            chunks: &p.fragments,
            data_start,
            co64,
            offsets: reorder.as_ref().map_or(&[], |r| &r.0[..]),
            shift: reorder.as_ref().map_or(0, |r| r.1),
        };
        moov(o, &spec);
    };
    let mut probe = Vec::new();
    build(&mut probe, 0, false);
    let co64 = ftyp_len + probe.len() as u64 + mdat_hdr + data > u32::MAX as u64;
    probe.clear();
    build(&mut probe, 0, co64);
    build(&mut head, ftyp_len + probe.len() as u64 + mdat_hdr, co64);
    if mdat_hdr == 16 {
        head.p32(1);
        head.extend_from_slice(b"mdat");
        head.p64(data + 16);
    } else {
        head.p32((data + 8) as u32);
        head.extend_from_slice(b"mdat");
    }
    let mut dst = io::BufWriter::with_capacity(64 * 1024, dst);
    dst.write_all(&head)?;
    // Copy the samples, one read per run of adjacent samples (io::copy's buffer is 8 KiB).
    let mut copy = |(start, n): (u64, u64)| -> Result<(), Mp4Error> {
        src.seek(SeekFrom::Start(start))?;
        if io::copy(&mut (&mut src).take(n), &mut dst)? != n {
            return Err(Mp4Error::Invalid(
                "the source shrank while being read".into(),
            ));
        }
        Ok(())
    };
    let mut run = (0u64, 0u64);
    for r in &p.samples {
        if run.0 + run.1 != r.offset {
            copy(run)?;
            run = (r.offset, 0);
        }
        run.1 += r.size as u64;
    }
    copy(run)?;
    dst.flush()?;
    Ok(summary(&p, head.len() as u64 + data).0)
}

/// The same parse without writing: what a fragmented file holds (for checks).
pub fn summarize<R: Read + Seek>(mut src: R) -> Result<Summary, Mp4Error> {
    let p = parse(&mut src)?;
    Ok(summary(&p, p.valid_end).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const TICKS: u32 = 6000; // 15 fps

    /// The demo clip: 640x360, 15 fps, 12 s, with B-frames.
    fn clip() -> Vec<Vec<u8>> {
        read("assets/demo/person-walk.h264")
    }

    fn read(path: &str) -> Vec<Vec<u8>> {
        let path = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
        h264::access_units(&std::fs::read(path).unwrap())
    }

    /// The AVCC form, written independently of `avcc`.
    fn expected_sample(au: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        for n in h264::nal_units(au)
            .into_iter()
            .filter(|n| ![7, 8, 9].contains(&(n[0] & 0x1f)))
        {
            o.extend_from_slice(&(n.len() as u32).to_be_bytes());
            o.extend_from_slice(n);
        }
        o
    }

    /// Init segment + one fragment per 15 access units; also the end offset of each fragment.
    fn fragmented(aus: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut f = init_segment(&Track::from_au(&aus[0]).unwrap());
        let mut ends = Vec::new();
        for (i, chunk) in aus.chunks(15).enumerate() {
            let samples: Vec<Sample> = chunk
                .iter()
                .map(|au| Sample {
                    au,
                    duration: TICKS,
                    key: h264::is_idr(au),
                    composition_offset: 0,
                })
                .collect();
            f.extend(fragment(
                i as u32 + 1,
                (i * 15) as u64 * TICKS as u64,
                &samples,
            ));
            ends.push(f.len());
        }
        (f, ends)
    }

    /// Test box walker: (type, body) of the boxes directly inside `b` (32-bit sizes only).
    fn boxes(b: &[u8]) -> Vec<(String, &[u8])> {
        let (mut out, mut p) = (Vec::new(), 0);
        while p < b.len() {
            let size = u32::from_be_bytes(b[p..p + 4].try_into().unwrap()) as usize;
            assert!(size >= 8 && p + size <= b.len(), "bad box at {p}");
            out.push((
                String::from_utf8_lossy(&b[p + 4..p + 8]).into_owned(),
                &b[p + 8..p + size],
            ));
            p += size;
        }
        out
    }

    /// The body of the box at `path` (each step skips `skip` bytes of its parent's body first).
    fn find<'a>(mut b: &'a [u8], path: &[(&str, usize)]) -> &'a [u8] {
        for &(kind, skip) in path {
            b = boxes(&b[skip..])
                .into_iter()
                .find(|(k, _)| k == kind)
                .unwrap_or_else(|| panic!("no {kind}"))
                .1;
        }
        b
    }

    fn u32s(b: &[u8]) -> Vec<u32> {
        b.chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect()
    }

    const STBL: [(&str, usize); 5] = [
        ("moov", 0),
        ("trak", 0),
        ("mdia", 0),
        ("minf", 0),
        ("stbl", 0),
    ];

    fn stbl_box<'a>(f: &'a [u8], kind: &str) -> &'a [u8] {
        let stbl = find(f, &STBL);
        find(stbl, &[(kind, 0)])
    }

    #[test]
    fn track_and_init_segment() {
        let aus = clip();
        let t = Track::from_au(&aus[0]).unwrap();
        assert_eq!((t.width, t.height), (640, 360));
        assert_eq!(t.codec(), format!("avc1.4d{:02x}16", t.sps[2]));
        assert!(
            Track::from_au(&aus[1]).is_none(),
            "a P frame carries no SPS/PPS"
        );
        let init = init_segment(&t);
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov"]
        );
        assert_eq!(top[0].1, b"isom\0\0\x02\0isomiso6avc1mp41");
        let trex = find(&init, &[("moov", 0), ("mvex", 0), ("trex", 0)]);
        assert_eq!(u32s(trex), [0, 1, 1, 0, 0, 0]);
        let tkhd = find(&init, &[("moov", 0), ("trak", 0), ("tkhd", 0)]);
        assert_eq!(tkhd[3], 3, "enabled, in movie");
        assert_eq!(u32s(&tkhd[76..84]), [640 << 16, 360 << 16]);
        let hdlr = find(&init, &[("moov", 0), ("trak", 0), ("mdia", 0), ("hdlr", 0)]);
        assert_eq!(&hdlr[8..12], b"vide");
        let avcc = find(stbl_box(&init, "stsd"), &[("avc1", 8), ("avcC", 78)]);
        assert_eq!(avcc[..6], [1, t.sps[1], t.sps[2], t.sps[3], 0xff, 0xe1]);
        assert_eq!(&avcc[8..8 + t.sps.len()], &t.sps[..]);
        assert_eq!(&avcc[avcc.len() - t.pps.len()..], &t.pps[..]);
        assert_eq!(u32s(stbl_box(&init, "stsz")), [0, 0, 0]);
    }

    #[test]
    fn fragment_drops_parameter_sets_and_points_at_its_data() {
        let au = [
            &[0, 0, 0, 1, 0x09, 0xf0][..],            // AUD
            &[0, 0, 0, 1, 0x67, 0x4d, 0, 0x16, 0xaa], // SPS
            &[0, 0, 1, 0x68, 0xce, 0x3c],             // PPS
            &[0, 0, 0, 1, 0x06, 5, 1, 0x80],          // SEI
            &[0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21],    // IDR
        ]
        .concat();
        let p = [0, 0, 0, 1, 0x41, 0x9a, 0x02];
        let samples = [
            Sample {
                au: &au,
                duration: 3000,
                key: true,
                composition_offset: 0,
            },
            Sample {
                au: &p,
                duration: 3001,
                key: false,
                composition_offset: 0,
            },
        ];
        let f = fragment(7, 90_000, &samples);
        let top = boxes(&f);
        assert_eq!((top[0].0.as_str(), top[1].0.as_str()), ("moof", "mdat"));
        let want = [
            &[0, 0, 0, 4, 0x06, 5, 1, 0x80][..],
            &[0, 0, 0, 4, 0x65, 0x88, 0x84, 0x21],
            &[0, 0, 0, 3, 0x41, 0x9a, 2],
        ]
        .concat();
        assert_eq!(top[1].1, want);
        assert_eq!(u32s(find(&f, &[("moof", 0), ("mfhd", 0)])), [0, 7]);
        let traf = find(&f, &[("moof", 0), ("traf", 0)]);
        assert_eq!(u32s(find(traf, &[("tfhd", 0)])), [0x02_0000, 1]);
        assert_eq!(u32s(find(traf, &[("tfdt", 0)])), [1 << 24, 0, 90_000]);
        let trun = u32s(find(traf, &[("trun", 0)]));
        let data_offset = f.len() - want.len();
        assert_eq!(
            trun,
            [
                0x701,
                2,
                data_offset as u32,
                3000,
                16,
                KEY_FLAGS,
                3001,
                7,
                NON_KEY_FLAGS
            ]
        );
    }

    #[test]
    fn finish_writes_a_fast_start_file_with_every_sample() {
        let aus = clip();
        let (frag, _) = fragmented(&aus);
        let (mut src, mut dst) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        src.write_all(&frag).unwrap();
        let s = finish(&mut src, &mut dst).unwrap();
        let mut out = Vec::new();
        dst.seek(SeekFrom::Start(0)).unwrap();
        dst.read_to_end(&mut out).unwrap();
        let n = aus.len() as u32;
        assert_eq!(n, 180);
        assert_eq!(
            s,
            Summary {
                samples: n,
                duration_ms: 12_000,
                bytes: out.len() as u64,
                first_is_key: true
            }
        );
        assert_eq!(
            summarize(Cursor::new(&frag)).unwrap(),
            Summary {
                bytes: frag.len() as u64,
                ..s
            }
        );

        let top = boxes(&out);
        assert_eq!(
            top.iter().map(|b| b.0.as_str()).collect::<Vec<_>>(),
            ["ftyp", "moov", "mdat"]
        );
        assert_eq!(top[0].1, b"isom\0\0\x02\0isomiso2avc1mp41");
        let mvhd = find(&out, &[("moov", 0), ("mvhd", 0)]);
        assert_eq!(u32s(&mvhd[12..20]), [1000, 12_000]);
        let mdhd = find(&out, &[("moov", 0), ("trak", 0), ("mdia", 0), ("mdhd", 0)]);
        assert_eq!(u32s(&mdhd[12..20]), [TIMESCALE, n * TICKS]);
        assert!(boxes(find(&out, &[("moov", 0)]))
            .iter()
            .all(|b| b.0 != "mvex"));
        // The sample entry is the init segment's, byte for byte.
        let init = init_segment(&Track::from_au(&aus[0]).unwrap());
        assert_eq!(stbl_box(&out, "stsd"), stbl_box(&init, "stsd"));
        assert_eq!(u32s(stbl_box(&out, "stts")), [0, 1, n, TICKS]);
        let keys: Vec<u32> = (1..)
            .zip(&aus)
            .filter(|(_, a)| h264::is_idr(a))
            .map(|(i, _)| i)
            .collect();
        assert!(keys.len() >= 2 && keys[0] == 1);
        let stss = u32s(stbl_box(&out, "stss"));
        assert_eq!((stss[1] as usize, &stss[2..]), (keys.len(), &keys[..]));
        let stsz = u32s(stbl_box(&out, "stsz"));
        assert_eq!(stsz[..3], [0, 0, n]);
        let stsc = u32s(stbl_box(&out, "stsc"));
        assert_eq!(stsc, [0, 1, 1, 15, 1]);
        let stco = u32s(stbl_box(&out, "stco"));
        assert_eq!(stco[1], 12);
        // Every chunk offset points at its samples, and they are the input in AVCC form.
        let mdat_start = (out.len() - top[2].1.len()) as u32;
        assert_eq!(stco[2], mdat_start);
        for (c, chunk) in aus.chunks(15).enumerate() {
            let mut p = stco[2 + c] as usize;
            for (k, au) in chunk.iter().enumerate() {
                let want = expected_sample(au);
                assert_eq!(stsz[3 + c * 15 + k] as usize, want.len());
                assert_eq!(&out[p..p + want.len()], &want[..], "sample {}", c * 15 + k);
                p += want.len();
            }
        }
        assert_eq!(
            top[2].1,
            aus.iter()
                .flat_map(|a| expected_sample(a))
                .collect::<Vec<_>>()
        );

        // B-frames: composition offsets put the pictures in order, the edit list starts at 0.
        let elst = u32s(find(
            &out,
            &[("moov", 0), ("trak", 0), ("edts", 0), ("elst", 0)],
        ));
        assert_eq!((elst[1], elst[2], elst[4]), (1, 12_000, 0x0001_0000));
        let ctts = u32s(stbl_box(&out, "ctts"));
        let offsets: Vec<u32> = ctts[2..]
            .chunks(2)
            .flat_map(|c| vec![c[1]; c[0] as usize])
            .collect();
        assert_eq!(offsets.len(), aus.len());
        let pts: Vec<u32> = (0..n)
            .zip(&offsets)
            .map(|(i, c)| i * TICKS + c - elst[3])
            .collect();
        assert_eq!(pts[0], 0);
        let mut sorted = pts.clone();
        sorted.sort();
        assert_eq!(sorted, (0..n).map(|i| i * TICKS).collect::<Vec<_>>());
        assert_ne!(sorted, pts);
    }

    #[test]
    fn no_composition_offsets_without_b_frames() {
        let aus = read("tests/data/walk-320x180.h264");
        let mut out = Vec::new();
        let s = finish(Cursor::new(fragmented(&aus).0), &mut out).unwrap();
        assert_eq!((s.samples as usize, s.first_is_key), (aus.len(), true));
        let stbl = boxes(find(&out, &STBL))
            .into_iter()
            .map(|b| b.0)
            .collect::<Vec<_>>();
        assert_eq!(stbl, ["stsd", "stts", "stss", "stsz", "stsc", "stco"]);
        let trak = boxes(find(&out, &[("moov", 0), ("trak", 0)]));
        assert!(trak.iter().all(|b| b.0 != "edts"));
    }

    #[test]
    fn a_cut_file_keeps_its_complete_fragments() {
        let aus = clip();
        let (frag, ends) = fragmented(&aus);
        let init_len = init_segment(&Track::from_au(&aus[0]).unwrap()).len();
        let last = ends.len() - 1;
        let cut = &frag[..(ends[last - 1] + ends[last]) / 2];
        let mut out = Vec::new();
        let s = finish(Cursor::new(cut), &mut out).unwrap();
        assert_eq!(
            (s.samples, s.duration_ms, s.first_is_key),
            (165, 11_000, true)
        );
        assert_eq!(u32s(stbl_box(&out, "stsz"))[2], 165);
        assert_eq!(
            summarize(Cursor::new(cut)).unwrap().bytes,
            ends[last - 1] as u64
        );
        // Cut at a fragment boundary: everything before it.
        assert_eq!(
            summarize(Cursor::new(&frag[..ends[2]])).unwrap().samples,
            45
        );
        // Cut in the first fragment or the init segment: nothing to keep.
        assert!(matches!(
            finish(Cursor::new(&frag[..ends[0] - 1]), &mut Vec::new()),
            Err(Mp4Error::Empty)
        ));
        assert!(matches!(
            finish(Cursor::new(&frag[..init_len]), &mut Vec::new()),
            Err(Mp4Error::Empty)
        ));
        let err = finish(Cursor::new(&frag[..init_len - 10]), &mut Vec::new());
        assert!(matches!(err, Err(Mp4Error::Invalid(_))), "{err:?}");
        assert!(matches!(
            summarize(Cursor::new(&[][..])),
            Err(Mp4Error::Invalid(_))
        ));
    }

    #[test]
    fn malformed_input_never_panics() {
        let aus = clip();
        let (frag, ends) = fragmented(&aus[..60]);
        let end = ends[1] + 200;
        // Every prefix of the first fragments, and a byte flipped at each position of the headers.
        let mut last = 0;
        for n in (0..end).step_by(7) {
            if let Ok(s) = summarize(Cursor::new(&frag[..n])) {
                assert!(s.samples >= last && s.bytes <= n as u64);
                last = s.samples;
            }
        }
        for i in 0..ends[0] + 400 {
            for v in [0x00, 0xff, 0x80] {
                let mut f = frag.clone();
                f[i] = v;
                if let Ok(s) = finish(Cursor::new(&f), &mut Vec::new()) {
                    assert!(s.samples <= 60);
                }
            }
        }
        // A trun that claims 2^32-1 samples.
        let mut f = frag.clone();
        let at = f.windows(4).position(|w| w == b"trun").unwrap() + 8;
        f[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(summarize(Cursor::new(&f)), Err(Mp4Error::Empty)));
    }
}
