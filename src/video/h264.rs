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
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
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
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
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
    Some(SpsInfo { width, height, fps })
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
    fn removes_emulation_prevention() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3, 0]), vec![0, 0, 1, 0, 0, 0]);
    }
}
