//! JPEG snapshots of decoded pictures (jpeg-encoder, pure Rust), scaled to at most 640 pixels
//! wide, and the conversions V4L2 frames need (YUYV and MJPEG into I420).

use super::decode::Picture;

/// Snapshots are at most this wide (height follows the aspect ratio).
pub const SNAPSHOT_MAX_WIDTH: usize = 640;

/// Encodes `p` as a JPEG of at most `max_width` pixels wide.
pub fn encode_picture(p: &Picture<'_>, max_width: usize, quality: u8) -> Result<Vec<u8>, String> {
    if p.width == 0 || p.height == 0 {
        return Err("empty picture".into());
    }
    let (w, h) = if p.width > max_width {
        (max_width, (p.height * max_width / p.width).max(2) & !1)
    } else {
        (p.width, p.height)
    };
    let mut buf = Vec::with_capacity(w * h * 3);
    for oy in 0..h {
        let sy = oy * p.height / h;
        let yrow = &p.y[sy * p.y_stride..];
        let crow = (sy / 2) * p.uv_stride;
        for ox in 0..w {
            let sx = ox * p.width / w;
            buf.push(yrow[sx]);
            buf.push(p.u[crow + sx / 2]);
            buf.push(p.v[crow + sx / 2]);
        }
    }
    let mut out = Vec::with_capacity(w * h / 4);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&buf, w as u16, h as u16, jpeg_encoder::ColorType::Ycbcr)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// An owned I420 picture, for sources that do not come from the H.264 decoder.
#[derive(Debug, Clone, Default)]
pub struct Frame420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// 0-255 levels (decoded from a JPEG) rather than video range (see [`Picture`]).
    pub full_range: bool,
}

impl Frame420 {
    pub fn picture(&self) -> Picture<'_> {
        Picture {
            width: self.width,
            height: self.height,
            y: &self.y,
            u: &self.u,
            v: &self.v,
            y_stride: self.width,
            uv_stride: self.width.div_ceil(2),
            full_range: self.full_range,
        }
    }

    /// Copies a (decoder-borrowed) picture.
    pub fn from_picture(p: &Picture<'_>) -> Frame420 {
        let (cw, ch) = (p.width.div_ceil(2), p.height.div_ceil(2));
        let copy = |plane: &[u8], stride: usize, w: usize, h: usize| {
            let mut out = Vec::with_capacity(w * h);
            for row in plane.chunks(stride).take(h) {
                out.extend_from_slice(&row[..w]);
            }
            out
        };
        Frame420 {
            width: p.width,
            height: p.height,
            y: copy(p.y, p.y_stride, p.width, p.height),
            u: copy(p.u, p.uv_stride, cw, ch),
            v: copy(p.v, p.uv_stride, cw, ch),
            full_range: p.full_range,
        }
    }

    /// An all-zero picture of the given size.
    pub fn black(width: usize, height: usize) -> Frame420 {
        let chroma = width.div_ceil(2) * height.div_ceil(2);
        Frame420 {
            width,
            height,
            y: vec![0; width * height],
            u: vec![0; chroma],
            v: vec![0; chroma],
            full_range: false,
        }
    }

    /// Converts packed YUYV (YUV 4:2:2, `stride` bytes per row) into I420.
    pub fn from_yuyv(data: &[u8], width: usize, height: usize, stride: usize) -> Option<Frame420> {
        let stride = stride.max(width * 2);
        if width < 2 || height < 2 || data.len() < stride * (height - 1) + width * 2 {
            return None;
        }
        let cw = width.div_ceil(2);
        let mut f = Frame420::black(width, height);
        for row in 0..height {
            let src = &data[row * stride..row * stride + width * 2];
            for x in 0..width {
                f.y[row * width + x] = src[x * 2];
            }
            if row % 2 == 0 {
                for cx in 0..width / 2 {
                    f.u[(row / 2) * cw + cx] = src[cx * 4 + 1];
                    f.v[(row / 2) * cw + cx] = src[cx * 4 + 3];
                }
            }
        }
        Some(f)
    }

    /// Decodes an MJPEG frame (a JPEG image) into I420.
    pub fn from_jpeg(data: &[u8]) -> Result<Frame420, String> {
        let fixed = with_huffman_tables(data);
        let data: &[u8] = &fixed;
        use zune_jpeg::zune_core::bytestream::ZCursor;
        use zune_jpeg::zune_core::colorspace::ColorSpace;
        use zune_jpeg::zune_core::options::DecoderOptions;
        let opts = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::YCbCr);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), opts);
        let pixels = d.decode().map_err(|e| e.to_string())?;
        let (width, height) = d.dimensions().ok_or("no dimensions")?;
        if pixels.len() < width * height * 3 {
            return Err("short JPEG decode".into());
        }
        let cw = width.div_ceil(2);
        let mut f = Frame420::black(width, height);
        // JFIF: YCbCr over the full 0-255 range.
        f.full_range = true;
        for row in 0..height {
            for x in 0..width {
                let i = (row * width + x) * 3;
                f.y[row * width + x] = pixels[i];
                if row % 2 == 0 && x % 2 == 0 {
                    f.u[(row / 2) * cw + x / 2] = pixels[i + 1];
                    f.v[(row / 2) * cw + x / 2] = pixels[i + 2];
                }
            }
        }
        Ok(f)
    }
}

/// The standard Huffman tables of JPEG Annex K as DHT segments, taken from a JPEG that
/// jpeg-encoder writes with its default (standard) tables.
fn standard_dht() -> &'static [u8] {
    static DHT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DHT.get_or_init(|| {
        let mut jpg = Vec::new();
        let pixels = [128u8; 16 * 16 * 3];
        let ok = jpeg_encoder::Encoder::new(&mut jpg, 80)
            .encode(&pixels, 16, 16, jpeg_encoder::ColorType::Ycbcr)
            .is_ok();
        let mut out = Vec::new();
        if ok {
            for (marker, seg) in segments(&jpg) {
                if marker == 0xC4 {
                    out.extend_from_slice(seg);
                }
            }
        }
        out
    })
}

/// The marker segments of a JPEG up to the start of scan: (marker, whole segment bytes).
fn segments(jpeg: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        let end = (i + 2 + len).min(jpeg.len());
        out.push((marker, &jpeg[i..end]));
        if marker == 0xDA {
            break;
        }
        i = end;
    }
    out
}

/// Many UVC webcams send MJPEG frames without Huffman tables (they rely on the standard ones,
/// as Motion-JPEG in AVI did). Inserts the standard tables before the start of scan when a
/// frame has none, so any JPEG decoder can read it.
pub fn with_huffman_tables(jpeg: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return jpeg.into();
    }
    let segs = segments(jpeg);
    if segs.iter().any(|(m, _)| *m == 0xC4) {
        return jpeg.into();
    }
    let Some(sos) = segs
        .iter()
        .find(|(m, _)| *m == 0xDA)
        .map(|(_, s)| s.as_ptr() as usize - jpeg.as_ptr() as usize)
    else {
        return jpeg.into();
    };
    let mut out = Vec::with_capacity(jpeg.len() + 420);
    out.extend_from_slice(&jpeg[..sos]);
    out.extend_from_slice(standard_dht());
    out.extend_from_slice(&jpeg[sos..]);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: usize, height: usize) -> Frame420 {
        let cw = width.div_ceil(2);
        let ch = height.div_ceil(2);
        Frame420 {
            width,
            height,
            y: (0..width * height)
                .map(|i| ((i % width) * 255 / width) as u8)
                .collect(),
            u: vec![100; cw * ch],
            v: vec![160; cw * ch],
            full_range: false,
        }
    }

    #[test]
    fn snapshot_is_scaled_to_640_and_decodes_back() {
        let f = gradient(1280, 720);
        let jpg = encode_picture(&f.picture(), SNAPSHOT_MAX_WIDTH, 80).unwrap();
        assert_eq!(&jpg[..3], &[0xFF, 0xD8, 0xFF]);
        let back = Frame420::from_jpeg(&jpg).unwrap();
        assert_eq!((back.width, back.height), (640, 360));
        // The gradient survives: left is dark, right is bright.
        assert!(back.y[180 * 640 + 10] < 40 && back.y[180 * 640 + 630] > 215);
        assert!((back.u[90 * 320 + 100] as i32 - 100).abs() < 6);
        let small = encode_picture(&gradient(320, 240).picture(), 640, 80).unwrap();
        assert_eq!(Frame420::from_jpeg(&small).unwrap().width, 320);
    }

    fn recorded(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/data/v4l2/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    /// Frames recorded from the same picture as a UVC camera would send them (YUYV, and MJPEG
    /// with and without Huffman tables) convert to the same image.
    #[test]
    fn recorded_v4l2_frames_convert() {
        let yuyv = Frame420::from_yuyv(&recorded("person-160x96.yuyv"), 160, 96, 320).unwrap();
        let mjpeg = recorded("person-160x96.mjpeg");
        let a = Frame420::from_jpeg(&mjpeg).unwrap();
        assert_eq!((a.width, a.height), (160, 96));
        // Strip the DHT segment, as many webcams do: still decodes, to the same picture.
        let dht = segments(&mjpeg)
            .into_iter()
            .find(|(m, _)| *m == 0xC4)
            .unwrap()
            .1;
        let at = dht.as_ptr() as usize - mjpeg.as_ptr() as usize;
        let stripped: Vec<u8> = mjpeg[..at]
            .iter()
            .chain(&mjpeg[at + dht.len()..])
            .copied()
            .collect();
        assert!(!segments(&stripped).iter().any(|(m, _)| *m == 0xC4));
        let b = Frame420::from_jpeg(&stripped).unwrap();
        assert_eq!(a.y, b.y);
        // The JPEG (full-range luma) and the raw YUYV frame (video-range luma, 16-235) show the
        // same scene.
        let full = |q: u8| ((q as i32 - 16) * 255 / 219).clamp(0, 255);
        let mean_diff =
            a.y.iter()
                .zip(&yuyv.y)
                .map(|(p, q)| (*p as i32 - full(*q)).abs())
                .sum::<i32>() as f32
                / a.y.len() as f32;
        assert!(mean_diff < 6.0, "{mean_diff}");
        // A frame that is not a JPEG is an error, not a panic.
        assert!(Frame420::from_jpeg(&mjpeg[..100]).is_err());
    }

    #[test]
    fn yuyv_to_i420() {
        // 4x2 YUYV: Y0 U Y1 V ...
        let row = [10, 100, 20, 200, 30, 101, 40, 201, 0, 0];
        let data: Vec<u8> = row.iter().chain(row.iter()).copied().collect();
        let f = Frame420::from_yuyv(&data, 4, 2, 10).unwrap();
        assert_eq!(f.y, vec![10, 20, 30, 40, 10, 20, 30, 40]);
        assert_eq!(f.u, vec![100, 101]);
        assert_eq!(f.v, vec![200, 201]);
        assert!(Frame420::from_yuyv(&data[..5], 4, 2, 10).is_none());
    }
}
