//! H.264 Annex B byte-stream helpers: NAL unit splitting, access-unit grouping, and the few SPS
//! fields the appliance needs (picture size and frame rate). Pure functions, no decoding.

/// NAL unit types used here (ITU-T H.264 table 7-1).
pub mod nal {
    pub const SLICE: u8 = 1;
    pub const IDR: u8 = 5;
    pub const SEI: u8 = 6;
    pub const SPS: u8 = 7;
    pub const PPS: u8 = 8;
    pub const AUD: u8 = 9;
}

/// The NAL units of an Annex B buffer, without their start codes.
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start of start code, start of payload)
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let sc = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((sc, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map(|s| s.0).unwrap_or(data.len());
        // Trailing zero bytes belong to no NAL unit.
        let mut e = end;
        while e > payload && data[e - 1] == 0 {
            e -= 1;
        }
        if e > payload {
            out.push(&data[payload..e]);
        }
    }
    out
}

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map(|b| b & 0x1f).unwrap_or(0)
}

fn is_vcl(t: u8) -> bool {
    (1..=5).contains(&t)
}

/// Groups an Annex B stream into access units (one coded picture each, with the parameter
/// sets and SEI before it), each returned as its own Annex B buffer.
pub fn access_units(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut aus: Vec<Vec<u8>> = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    let mut cur_has_vcl = false;
    for n in nal_units(stream) {
        let t = nal_type(n);
        // first_mb_in_slice is ue(v); a value of 0 is the single bit '1'.
        let first_slice = is_vcl(t) && n.len() > 1 && n[1] & 0x80 != 0;
        let starts_new = cur_has_vcl
            && (matches!(t, nal::AUD | nal::SPS | nal::PPS | nal::SEI | 14..=18) || first_slice);
        if starts_new {
            aus.push(std::mem::take(&mut cur));
            cur_has_vcl = false;
        }
        cur.extend_from_slice(&[0, 0, 0, 1]);
        cur.extend_from_slice(n);
        cur_has_vcl |= is_vcl(t);
    }
    if cur_has_vcl {
        aus.push(cur);
    }
    aus
}

/// True if the access unit holds an IDR slice (a clean starting point for decoding).
pub fn is_idr(au: &[u8]) -> bool {
    nal_units(au).iter().any(|n| nal_type(n) == nal::IDR)
}

/// What the appliance reads from a sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpsInfo {
    pub width: u32,
    pub height: u32,
    /// From the VUI timing information, when present.
    pub fps: Option<f32>,
    /// Slice-header layout, for picture order counts ([`PocCounter`]).
    pub separate_colour_plane: bool,
    pub frame_num_bits: u32,
    pub poc_type: u32,
    /// log2_max_pic_order_cnt_lsb (POC type 0).
    pub poc_lsb_bits: u32,
    pub frame_mbs_only: bool,
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b as u32)
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + self.bits(zeros)? as u64) as u32)
    }
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 {
            ((k + 1) / 2) as i32
        } else {
            (-(k / 2)) as i32
        })
    }
}

/// Removes emulation-prevention bytes (00 00 03 → 00 00).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn skip_scaling_list(r: &mut Bits, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Some(())
}

/// Parses picture size and frame rate from an SPS NAL unit (with its header byte).
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal_type(nal) != nal::SPS {
        return None;
    }
    let data = unescape(&nal[1..]);
    let mut r = Bits {
        data: &data,
        pos: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()? == 1;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let n = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..n {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let frame_num_bits = r.ue()?.min(12) + 4;
    let poc_type = r.ue()?;
    let mut poc_lsb_bits = 0;
    match poc_type {
        0 => poc_lsb_bits = r.ue()?.min(12) + 4,
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            for _ in 0..n.min(256) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (crop_x, crop_y) = match chroma_format_idc {
        0 => (1, 2 - frame_mbs_only),
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let width = (w_mbs * 16).checked_sub((cl + cr) * crop_x)?;
    let height = (h_units * 16 * (2 - frame_mbs_only)).checked_sub((ct + cb) * crop_y)?;
    let mut fps = None;
    if r.bit() == Some(1) {
        // VUI parameters, up to the timing information.
        let vui = (|| {
            if r.bit()? == 1 && r.bits(8)? == 255 {
                r.bits(32)?; // sar_width, sar_height
            }
            if r.bit()? == 1 {
                r.bit()?; // overscan_appropriate_flag
            }
            if r.bit()? == 1 {
                r.bits(4)?; // video_format, video_full_range_flag
                if r.bit()? == 1 {
                    r.bits(24)?; // colour description
                }
            }
            if r.bit()? == 1 {
                r.ue()?;
                r.ue()?;
            }
            if r.bit()? == 1 {
                let units = r.bits(32)?;
                let scale = r.bits(32)?;
                if units > 0 && scale > 0 {
                    return Some(scale as f32 / (2.0 * units as f32));
                }
            }
            None
        })();
        fps = vui.filter(|f| (0.5..=240.0).contains(f));
    }
    Some(SpsInfo {
        width,
        height,
        fps,
        separate_colour_plane,
        frame_num_bits,
        poc_type,
        poc_lsb_bits,
        frame_mbs_only: frame_mbs_only == 1,
    })
}

/// Picture order counts (ITU-T H.264 8.2.1.1) of a stream's pictures in decoding order: the
/// presentation order when the stream has B-frames. POC type 0 only (types 1 and 2 give None;
/// type 2 is never reordered); memory_management_control_operation 5 is not seen.
#[derive(Debug, Default)]
pub struct PocCounter {
    prev_msb: i64,
    prev_lsb: i64,
}

impl PocCounter {
    /// The picture order count of a picture from its first slice NAL unit (with its header byte;
    /// the first 64 bytes are enough). Restarts at 0 on IDR pictures.
    pub fn next(&mut self, sps: &SpsInfo, slice: &[u8]) -> Option<i64> {
        let t = nal_type(slice);
        if sps.poc_type != 0 || !is_vcl(t) {
            return None;
        }
        let data = unescape(slice.get(1..slice.len().min(64))?);
        let mut r = Bits {
            data: &data,
            pos: 0,
        };
        r.ue()?; // first_mb_in_slice
        r.ue()?; // slice_type
        r.ue()?; // pic_parameter_set_id
        if sps.separate_colour_plane {
            r.bits(2)?;
        }
        r.bits(sps.frame_num_bits)?;
        if !sps.frame_mbs_only && r.bit()? == 1 {
            r.bit()?; // bottom_field_flag
        }
        if t == nal::IDR {
            r.ue()?; // idr_pic_id
            (self.prev_msb, self.prev_lsb) = (0, 0);
        }
        let lsb = r.bits(sps.poc_lsb_bits)? as i64;
        let max = 1i64 << sps.poc_lsb_bits;
        let msb = if lsb < self.prev_lsb && self.prev_lsb - lsb >= max / 2 {
            self.prev_msb + max
        } else if lsb > self.prev_lsb && lsb - self.prev_lsb > max / 2 {
            self.prev_msb - max
        } else {
            self.prev_msb
        };
        if slice[0] & 0x60 != 0 {
            // A reference picture: the next picture's POC is relative to this one.
            (self.prev_msb, self.prev_lsb) = (msb, lsb);
        }
        Some(msb + lsb)
    }
}

/// The SPS information of the first SPS in an Annex B buffer.
pub fn find_sps(data: &[u8]) -> Option<SpsInfo> {
    nal_units(data)
        .into_iter()
        .find(|n| nal_type(n) == nal::SPS)
        .and_then(parse_sps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_nal_units_with_3_and_4_byte_start_codes() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0,
        ];
        let n = nal_units(&s);
        assert_eq!(
            n,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]
        );
    }

    #[test]
    fn groups_access_units() {
        // SPS, PPS, IDR slice (first_mb=0), P slice (first_mb=0), P slice continuing (first_mb!=0), AUD, P.
        let s = [
            0, 0, 0, 1, 0x67, 0x42, //
            0, 0, 0, 1, 0x68, 0xce, //
            0, 0, 0, 1, 0x65, 0x88, //
            0, 0, 0, 1, 0x41, 0x9a, //
            0, 0, 0, 1, 0x41, 0x40, //
            0, 0, 0, 1, 0x09, 0xf0, //
            0, 0, 0, 1, 0x41, 0x9b,
        ];
        let aus = access_units(&s);
        assert_eq!(aus.len(), 3);
        assert!(is_idr(&aus[0]));
        assert_eq!(nal_units(&aus[1]).len(), 2);
        assert_eq!(nal_type(nal_units(&aus[2])[0]), nal::AUD);
    }

    #[test]
    fn exp_golomb() {
        // 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3
        let data = [0b1010_0110, 0b0100_0000];
        let mut r = Bits {
            data: &data,
            pos: 0,
        };
        assert_eq!(
            (r.ue(), r.ue(), r.ue(), r.ue()),
            (Some(0), Some(1), Some(2), Some(3))
        );
    }

    #[test]
    fn picture_order_counts_of_a_b_frame_stream() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/demo/person-walk.h264");
        let aus = access_units(&std::fs::read(path).unwrap());
        let sps = find_sps(&aus[0]).unwrap();
        assert_eq!((sps.poc_type, sps.frame_mbs_only), (0, true));
        let mut c = PocCounter::default();
        let mut gops: Vec<Vec<i64>> = Vec::new();
        for au in &aus {
            let slice = nal_units(au)
                .into_iter()
                .find(|n| is_vcl(nal_type(n)))
                .unwrap();
            if is_idr(au) {
                gops.push(Vec::new());
            }
            gops.last_mut().unwrap().push(c.next(&sps, slice).unwrap());
        }
        // x264 counts 2 per frame from each IDR; B-frames make the decoding order differ.
        assert!(gops.len() >= 2);
        for g in &gops {
            let mut sorted = g.clone();
            sorted.sort();
            assert_eq!(
                sorted,
                (0..g.len() as i64).map(|i| 2 * i).collect::<Vec<_>>()
            );
            assert_ne!(&sorted, g);
        }
    }

    #[test]
    fn removes_emulation_prevention() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
    }
}
