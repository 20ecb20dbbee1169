//! Turns an uploaded or captured picture into what is sent to a cloud provider: a baseline JPEG,
//! quality 85, at most [`MAX_LONG_SIDE`] pixels on its long side. Accepts JPEG and PNG only,
//! recognised by their magic bytes (never by a file name or a client's content type).
//!
//! Every image is decoded and re-encoded, even a small JPEG: that strips metadata (EXIF GPS
//! positions, camera serial numbers) before a picture leaves the appliance, and gives providers
//! one predictable format. Downscaling averages the source pixels each output pixel covers (an
//! area filter), which keeps fine detail legible without the aliasing of nearest-neighbour.
//! EXIF orientation is not applied: camera snapshots carry none, and an uploaded phone photo is
//! described as stored.
//!
//! Pure and CPU-bound (tens of milliseconds for a 4K frame): callers run it on a blocking thread.

use thiserror::Error;

/// Longest side of an image sent to a provider, in pixels. Larger images cost more tokens
/// (OpenAI and Anthropic bill by image size) without helping a scene description.
pub const MAX_LONG_SIDE: usize = 1280;

/// JPEG quality of the re-encoded image.
pub const JPEG_QUALITY: u8 = 85;

/// Refuse to decode images with more pixels than this (about 8K UHD plus margin), so a crafted
/// upload cannot make the appliance allocate gigabytes.
pub const MAX_SOURCE_PIXELS: usize = 40_000_000;

/// Refuse images wider or taller than this, checked from the headers before decoding.
const MAX_SOURCE_SIDE: usize = 16_000;

/// A picture ready for upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Baseline JPEG bytes.
    pub jpeg: Vec<u8>,
    pub width: usize,
    pub height: usize,
}

/// Why a picture cannot be prepared. The texts are meant for the client that uploaded it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("the image is empty")]
    Empty,
    #[error("unsupported image format ({0}): send a JPEG or PNG")]
    Unsupported(&'static str),
    #[error("the {format} image cannot be decoded: {reason}")]
    Decode {
        format: &'static str,
        reason: String,
    },
    #[error("the image is too large ({width}x{height} pixels)")]
    TooLarge { width: usize, height: usize },
    #[error("the image cannot be encoded as JPEG: {0}")]
    Encode(String),
}

/// Decodes a JPEG or PNG, scales it to at most [`MAX_LONG_SIDE`] on the long side (keeping the
/// aspect ratio) and re-encodes it as a JPEG of quality [`JPEG_QUALITY`].
pub fn prepare(bytes: &[u8]) -> Result<Prepared, ImageError> {
    prepare_within(bytes, MAX_LONG_SIDE)
}

/// As [`prepare`], with the long side capped at `max_long` (used for snapshots taken from a
/// camera at full resolution).
pub fn prepare_within(bytes: &[u8], max_long: usize) -> Result<Prepared, ImageError> {
    let rgb = decode_rgb(bytes)?;
    let (width, height) = fit(rgb.width, rgb.height, max_long);
    let pixels = if (width, height) == (rgb.width, rgb.height) {
        rgb.pixels
    } else {
        resize_rgb(&rgb.pixels, rgb.width, rgb.height, width, height)
    };
    let mut jpeg = Vec::with_capacity(width * height / 3);
    jpeg_encoder::Encoder::new(&mut jpeg, JPEG_QUALITY)
        .encode(
            &pixels,
            width as u16,
            height as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(Prepared {
        jpeg,
        width,
        height,
    })
}

/// Names the format of `bytes` from its magic number; `None` when it is not recognised.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: [(&[u8], &str); 6] = [
        (&[0xFF, 0xD8, 0xFF], "JPEG"),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"GIF8", "GIF"),
        (b"BM", "BMP"),
        (b"II*\0", "TIFF"),
        (b"MM\0*", "TIFF"),
    ];
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some("WebP");
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Some(match &bytes[8..12] {
            b"avif" | b"avis" => "AVIF",
            b"heic" | b"heix" | b"mif1" | b"msf1" => "HEIF",
            _ => "MP4/QuickTime",
        });
    }
    MAGIC
        .iter()
        .find(|(m, _)| bytes.starts_with(m))
        .map(|(_, name)| *name)
}

/// Packed 8-bit RGB.
struct Rgb {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

fn decode_rgb(bytes: &[u8]) -> Result<Rgb, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    match sniff(bytes) {
        Some("JPEG") => decode_jpeg(bytes),
        Some("PNG") => decode_png(bytes),
        Some(other) => Err(ImageError::Unsupported(other)),
        None => Err(ImageError::Unsupported("not an image")),
    }
}

fn check_size(width: usize, height: usize) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Decode {
            format: "image",
            reason: "zero width or height".into(),
        });
    }
    if width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE || width * height > MAX_SOURCE_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

fn decode_jpeg(bytes: &[u8]) -> Result<Rgb, ImageError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let err = |e: &dyn std::fmt::Display| ImageError::Decode {
        format: "JPEG",
        reason: e.to_string(),
    };
    // Webcam MJPEG frames often omit the standard Huffman tables.
    let fixed = crate::video::jpeg::with_huffman_tables(bytes);
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SOURCE_SIDE)
        .set_max_height(MAX_SOURCE_SIDE);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&fixed[..]), opts);
    d.decode_headers().map_err(|e| err(&e))?;
    let (width, height) = d.dimensions().ok_or_else(|| err(&"no dimensions"))?;
    check_size(width, height)?;
    let pixels = d.decode().map_err(|e| err(&e))?;
    if pixels.len() != width * height * 3 {
        return Err(err(&format!(
            "decoded {} bytes for {width}x{height} RGB",
            pixels.len()
        )));
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

/// Decodes a PNG (any bit depth, palette, grey or colour, with or without alpha; the first
/// frame of an animated PNG). Transparent pixels are composited over black.
fn decode_png(bytes: &[u8]) -> Result<Rgb, ImageError> {
    use zune_png::zune_core::bytestream::ZCursor;
    use zune_png::zune_core::colorspace::ColorSpace;
    use zune_png::zune_core::options::DecoderOptions;
    let err = |e: &dyn std::fmt::Display| ImageError::Decode {
        format: "PNG",
        reason: e.to_string(),
    };
    let opts = DecoderOptions::default()
        .png_set_strip_to_8bit(true)
        .png_set_add_alpha_channel(true)
        .png_set_decode_animated(false)
        .set_max_width(MAX_SOURCE_SIDE)
        .set_max_height(MAX_SOURCE_SIDE);
    let mut d = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), opts);
    d.decode_headers().map_err(|e| err(&e))?;
    let (width, height) = d.dimensions().ok_or_else(|| err(&"no dimensions"))?;
    check_size(width, height)?;
    let space = d.colorspace().ok_or_else(|| err(&"no colour space"))?;
    let data = d
        .decode()
        .map_err(|e| err(&e))?
        .u8()
        .ok_or_else(|| err(&"not 8-bit after conversion"))?;
    let n = space.num_components();
    if data.len() < width * height * n {
        return Err(err(&"short decode"));
    }
    let over_black = |c: u8, a: u8| ((c as u32 * a as u32 + 127) / 255) as u8;
    let mut pixels = Vec::with_capacity(width * height * 3);
    match space {
        ColorSpace::RGBA => {
            for p in data.chunks_exact(4).take(width * height) {
                let a = p[3];
                pixels.extend_from_slice(&[
                    over_black(p[0], a),
                    over_black(p[1], a),
                    over_black(p[2], a),
                ]);
            }
        }
        ColorSpace::LumaA => {
            for p in data.chunks_exact(2).take(width * height) {
                let l = over_black(p[0], p[1]);
                pixels.extend_from_slice(&[l, l, l]);
            }
        }
        ColorSpace::RGB => pixels.extend_from_slice(&data[..width * height * 3]),
        ColorSpace::Luma => {
            for &l in &data[..width * height] {
                pixels.extend_from_slice(&[l, l, l]);
            }
        }
        other => return Err(err(&format!("colour space {other:?}"))),
    }
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

/// The size of a `width`x`height` image scaled down (never up) so that its long side is at most
/// `max_long`, keeping the aspect ratio (rounded, at least 1 pixel).
pub fn fit(width: usize, height: usize, max_long: usize) -> (usize, usize) {
    let long = width.max(height);
    if long <= max_long {
        return (width, height);
    }
    let scale = |v: usize| ((v * max_long + long / 2) / long).clamp(1, max_long);
    (scale(width), scale(height))
}

/// For each output index: the first source index it covers and the weights of the source
/// indices from there (their overlap with the output pixel's footprint, summing to 1).
fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let step = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let (start, end) = (i as f64 * step, ((i + 1) as f64 * step).min(src as f64));
            let first = start.floor() as usize;
            let last = (end.ceil() as usize).clamp(first + 1, src);
            let weights = (first..last)
                .map(|j| {
                    let overlap = end.min(j as f64 + 1.0) - start.max(j as f64);
                    (overlap.max(0.0) / (end - start)) as f32
                })
                .collect();
            (first, weights)
        })
        .collect()
}

/// Scales packed RGB down with an area (box) filter: each output pixel is the average of the
/// source pixels under it, partial pixels weighted by coverage. Works one output row at a time,
/// so memory stays at two rows beyond the output.
fn resize_rgb(src: &[u8], w: usize, h: usize, dw: usize, dh: usize) -> Vec<u8> {
    let xw = area_weights(w, dw);
    let yw = area_weights(h, dh);
    let mut out = vec![0u8; dw * dh * 3];
    let mut acc = vec![0f32; dw * 3];
    let mut row = vec![0f32; dw * 3];
    let mut cached_row = None;
    for (oy, (first_y, wy)) in yw.iter().enumerate() {
        acc.fill(0.0);
        for (k, &weight_y) in wy.iter().enumerate() {
            let sy = first_y + k;
            if cached_row != Some(sy) {
                let line = &src[sy * w * 3..(sy + 1) * w * 3];
                for (ox, (first_x, wx)) in xw.iter().enumerate() {
                    let mut px = [0f32; 3];
                    for (m, &weight_x) in wx.iter().enumerate() {
                        let s = &line[(first_x + m) * 3..(first_x + m) * 3 + 3];
                        for c in 0..3 {
                            px[c] += weight_x * s[c] as f32;
                        }
                    }
                    row[ox * 3..ox * 3 + 3].copy_from_slice(&px);
                }
                cached_row = Some(sy);
            }
            for (a, r) in acc.iter_mut().zip(&row) {
                *a += weight_y * r;
            }
        }
        for (o, a) in out[oy * dw * 3..(oy + 1) * dw * 3].iter_mut().zip(&acc) {
            *o = (a + 0.5).clamp(0.0, 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::jpeg::Frame420;

    fn jpeg_rgb(w: usize, h: usize, px: impl Fn(usize, usize) -> [u8; 3]) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&px(x, y));
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    #[test]
    fn fit_keeps_the_aspect_ratio_and_never_upscales() {
        assert_eq!(fit(1920, 1080, 1280), (1280, 720));
        assert_eq!(fit(1080, 1920, 1280), (720, 1280));
        assert_eq!(fit(4000, 3000, 1280), (1280, 960));
        assert_eq!(fit(640, 424, 1280), (640, 424));
        assert_eq!(fit(1280, 1280, 1280), (1280, 1280));
        assert_eq!(fit(10000, 3, 1280), (1280, 1));
    }

    #[test]
    fn area_weights_cover_each_output_pixel_exactly_once() {
        for (src, dst) in [(1920, 1280), (3, 2), (10, 3), (1281, 1280), (7, 7)] {
            let ws = area_weights(src, dst);
            assert_eq!(ws.len(), dst);
            let mut coverage = vec![0f64; src];
            for (first, w) in &ws {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-4, "{src}->{dst}");
                for (k, x) in w.iter().enumerate() {
                    coverage[first + k] += *x as f64 * src as f64 / dst as f64;
                }
            }
            // Every source pixel contributes in total exactly its own area.
            assert!(
                coverage.iter().all(|c| (c - 1.0).abs() < 1e-3),
                "{src}->{dst}"
            );
        }
    }

    #[test]
    fn a_large_jpeg_is_scaled_to_1280_and_keeps_its_content() {
        // Left half red, right half blue, with a one-pixel checkerboard band at the bottom that
        // an area filter must turn into mid grey (nearest-neighbour would keep black or white).
        let (w, h) = (2560, 1440);
        let src = jpeg_rgb(w, h, |x, y| {
            if y >= 1200 {
                if (x + y) % 2 == 0 {
                    [255, 255, 255]
                } else {
                    [0, 0, 0]
                }
            } else if x < w / 2 {
                [220, 20, 20]
            } else {
                [20, 20, 220]
            }
        });
        let p = prepare(&src).unwrap();
        assert_eq!((p.width, p.height), (1280, 720));
        let back = Frame420::from_jpeg(&p.jpeg).unwrap();
        assert_eq!((back.width, back.height), (1280, 720));
        let cw = 640;
        // Red has high Cr (v), blue high Cb (u).
        assert!(back.v[100 * cw + 100] > 200 && back.u[100 * cw + 100] < 120);
        assert!(back.u[100 * cw + 500] > 200 && back.v[100 * cw + 500] < 120);
        let grey = back.y[680 * 1280 + 600] as i32;
        assert!((grey - 128).abs() < 20, "checkerboard averaged to {grey}");
    }

    #[test]
    fn a_small_jpeg_keeps_its_size_and_loses_its_metadata() {
        let mut src = jpeg_rgb(64, 48, |x, _| [x as u8 * 4, 100, 50]);
        // Add an APP1 (EXIF) segment after SOI.
        let exif = [
            0xFF, 0xE1, 0x00, 0x0A, b'E', b'x', b'i', b'f', 0, 0, b'G', b'P',
        ];
        src.splice(2..2, exif);
        let p = prepare(&src).unwrap();
        assert_eq!((p.width, p.height), (64, 48));
        assert!(!p.jpeg.windows(4).any(|w| w == b"Exif"));
        assert!(Frame420::from_jpeg(&p.jpeg).is_ok());
    }

    #[test]
    fn a_grey_jpeg_decodes_to_rgb() {
        let mut src = Vec::new();
        jpeg_encoder::Encoder::new(&mut src, 90)
            .encode(&[77u8; 32 * 16], 32, 16, jpeg_encoder::ColorType::Luma)
            .unwrap();
        let p = prepare(&src).unwrap();
        let back = Frame420::from_jpeg(&p.jpeg).unwrap();
        assert!((back.y[8 * 32 + 8] as i32 - 77).abs() < 4);
    }

    /// A minimal PNG writer (stored deflate blocks), enough to test the decoder path.
    fn png(w: usize, h: usize, colour_type: u8, channels: usize, px: &[u8]) -> Vec<u8> {
        fn crc32(data: &[u8]) -> u32 {
            let mut crc = 0xFFFF_FFFFu32;
            for &b in data {
                crc ^= b as u32;
                for _ in 0..8 {
                    crc = if crc & 1 != 0 {
                        (crc >> 1) ^ 0xEDB8_8320
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let start = out.len();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            let crc = crc32(&out[start..]);
            out.extend_from_slice(&crc.to_be_bytes());
        }
        let mut raw = Vec::new();
        for row in px.chunks(w * channels) {
            raw.push(0); // filter: none
            raw.extend_from_slice(row);
        }
        let mut z = vec![0x78, 0x01];
        let blocks: Vec<&[u8]> = raw.chunks(65535).collect();
        for (i, b) in blocks.iter().enumerate() {
            z.push((i + 1 == blocks.len()) as u8);
            z.extend_from_slice(&(b.len() as u16).to_le_bytes());
            z.extend_from_slice(&(!(b.len() as u16)).to_le_bytes());
            z.extend_from_slice(b);
        }
        let (mut a, mut bsum) = (1u32, 0u32);
        for &x in &raw {
            a = (a + x as u32) % 65521;
            bsum = (bsum + a) % 65521;
        }
        z.extend_from_slice(&((bsum << 16) | a).to_be_bytes());
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(w as u32).to_be_bytes());
        ihdr.extend_from_slice(&(h as u32).to_be_bytes());
        ihdr.extend_from_slice(&[8, colour_type, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    #[test]
    fn png_rgb_and_rgba_are_accepted_and_scaled() {
        let (w, h) = (1600, 200);
        let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 200, 200]).collect();
        let p = prepare(&png(w, h, 2, 3, &rgb)).unwrap();
        assert_eq!((p.width, p.height), (1280, 160));
        let back = Frame420::from_jpeg(&p.jpeg).unwrap();
        assert!((back.y[80 * 1280 + 640] as i32 - 200).abs() < 4);

        // Half-transparent white over black is mid grey.
        let rgba: Vec<u8> = (0..16 * 16).flat_map(|_| [255u8, 255, 255, 128]).collect();
        let p = prepare(&png(16, 16, 6, 4, &rgba)).unwrap();
        let back = Frame420::from_jpeg(&p.jpeg).unwrap();
        assert!((back.y[8 * 16 + 8] as i32 - 128).abs() < 4);

        let grey = vec![50u8; 8 * 8];
        assert!(prepare(&png(8, 8, 0, 1, &grey)).is_ok());
    }

    #[test]
    fn other_inputs_are_clear_errors() {
        assert_eq!(prepare(b""), Err(ImageError::Empty));
        assert_eq!(
            prepare(b"GIF89a......").unwrap_err().to_string(),
            "unsupported image format (GIF): send a JPEG or PNG"
        );
        assert_eq!(
            prepare(b"RIFF\0\0\0\0WEBPVP8 "),
            Err(ImageError::Unsupported("WebP"))
        );
        assert_eq!(
            prepare(b"hello world"),
            Err(ImageError::Unsupported("not an image"))
        );
        let jpeg = jpeg_rgb(32, 32, |_, _| [1, 2, 3]);
        assert!(matches!(
            prepare(&jpeg[..40]),
            Err(ImageError::Decode { format: "JPEG", .. })
        ));
        let png = png(4, 4, 2, 3, &[9u8; 48]);
        assert!(matches!(
            prepare(&png[..40]),
            Err(ImageError::Decode { format: "PNG", .. })
        ));
    }

    #[test]
    fn huge_dimensions_are_refused_before_decoding() {
        // A PNG header claiming 15000x15000 (225 MP) with no real data behind it.
        let mut fake = png(1, 1, 2, 3, &[0, 0, 0]);
        fake[16..20].copy_from_slice(&15000u32.to_be_bytes());
        fake[20..24].copy_from_slice(&15000u32.to_be_bytes());
        assert_eq!(
            prepare(&fake),
            Err(ImageError::TooLarge {
                width: 15000,
                height: 15000
            })
        );
    }
}
