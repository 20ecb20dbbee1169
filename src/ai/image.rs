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
//! Memory: a small compressed file can claim a huge picture (a 280 KB PNG inflates to 6000x6000
//! 16-bit RGBA, 288 MB, and the decoder holds that twice). So before anything large is
//! allocated, the headers alone give an [`estimate`] of the most bytes the decoders and this
//! module will hold at once for that image, counted from what zune-png 0.5 and zune-jpeg 0.5
//! really allocate, and an image over [`MAX_DECODE_BYTES`] is refused as
//! [`ImageError::TooLarge`]. [`prepare_bounded`], the entry point the appliance uses, also lets
//! only [`MAX_CONCURRENT_DECODES`] decodes run at once in the whole process; [`check`] is the
//! cheap header test request handlers run on arrival.
//!
//! Pure and CPU-bound (tens of milliseconds for a 4K frame): [`prepare`] and
//! [`prepare_within`] are for blocking threads.

use std::borrow::Cow;
use thiserror::Error;

/// Longest side of an image sent to a provider, in pixels. Larger images cost more tokens
/// (OpenAI and Anthropic bill by image size) without helping a scene description.
pub const MAX_LONG_SIDE: usize = 1280;

/// JPEG quality of the re-encoded image.
pub const JPEG_QUALITY: u8 = 85;

/// The most memory one decode may need, as [`estimate`]d from the headers: beyond it the image
/// is refused before any large allocation. What fits (estimates for [`MAX_LONG_SIDE`]; the
/// file size counts because decoders keep copies of its data and metadata):
/// - camera JPEGs: 4K (3840x2160) or 12 MP (4000x3000), baseline (about 40 to 55 MiB) or
///   progressive (4:2:0 about 70 to 90 MiB; 4:4:4 about 105 MiB, 121 MiB with an 8 MB file);
///   baseline JPEGs up to about 36 MP, progressive 4:2:0 up to about 20 MP;
/// - 8-bit 4K PNGs: RGB (72 MiB; about 106 MiB with 16 MiB of compressed data and a colour
///   profile), RGBA (96 MiB; about 121 MiB with 12 MiB of compressed data); 8-bit RGB up to
///   about 12 MP;
/// - 16-bit RGBA PNGs up to about 2560x1440 (85 MiB).
///
/// Refused: 16-bit 4K PNGs, 20 MP 8-bit PNGs, 4:4:4 progressive JPEGs much over 12 MP, and a
/// 280 KB PNG claiming 6000x6000 16-bit RGBA (about 825 MiB).
pub const MAX_DECODE_BYTES: usize = 128 << 20;

/// Decodes that run at once in the whole process (uploads, re-analyses, Protect snapshots):
/// with [`MAX_DECODE_BYTES`], at most 256 MiB of decoding at any time.
pub const MAX_CONCURRENT_DECODES: usize = 2;

static DECODES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DECODES);

/// Refuse images wider or taller than this, checked from the headers before decoding.
const MAX_SOURCE_SIDE: usize = 16_000;

/// Small allocations of any decode (decoder state, tables, palettes), counted once.
const FIXED_BYTES: u64 = 1 << 20;

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
    #[error(
        "the image is too large ({width}x{height} pixels): decoding it would need more than {} MiB",
        MAX_DECODE_BYTES >> 20
    )]
    TooLarge { width: usize, height: usize },
    #[error("the image cannot be encoded as JPEG: {0}")]
    Encode(String),
}

/// What preparing an image will take, read from its headers without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// `JPEG` or `PNG`.
    pub format: &'static str,
    pub width: usize,
    pub height: usize,
    /// The most bytes the decoder and this module hold at once while preparing it (the input
    /// itself not counted): an upper bound, phase by phase, of what the decoders allocate.
    pub bytes: u64,
}

/// Decodes a JPEG or PNG, scales it to at most [`MAX_LONG_SIDE`] on the long side (keeping the
/// aspect ratio) and re-encodes it as a JPEG of quality [`JPEG_QUALITY`].
pub fn prepare(bytes: &[u8]) -> Result<Prepared, ImageError> {
    prepare_within(bytes, MAX_LONG_SIDE)
}

/// As [`prepare`], with the long side capped at `max_long` (used for snapshots taken from a
/// camera at full resolution). Refuses an image over [`MAX_DECODE_BYTES`] before decoding it.
pub fn prepare_within(bytes: &[u8], max_long: usize) -> Result<Prepared, ImageError> {
    let plan = plan(bytes, max_long)?;
    let rgb = match &plan.source {
        Source::Jpeg(data) => decode_jpeg(data, &plan.estimate)?,
        Source::Png(header) => decode_png(bytes, header)?,
    };
    // Frees the JPEG copy with Huffman tables, if one was made.
    drop(plan);
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

/// As [`prepare_within`], for async code: refuses an image over the budget at once, then waits
/// for one of the [`MAX_CONCURRENT_DECODES`] process-wide slots and decodes on the blocking
/// pool. The slot is held by the blocking task, so an abandoned request keeps counting until
/// its decode has finished.
pub async fn prepare_bounded<B>(bytes: B, max_long: usize) -> Result<Prepared, ImageError>
where
    B: AsRef<[u8]> + Send + 'static,
{
    estimate(bytes.as_ref(), max_long)?;
    let slot = DECODES
        .acquire()
        .await
        .expect("the decode semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        prepare_within(bytes.as_ref(), max_long)
    })
    .await
    .unwrap_or_else(|_| {
        Err(ImageError::Decode {
            format: "image",
            reason: "the decoder failed".into(),
        })
    })
}

/// The cheap test for a request handler: the image is a JPEG or PNG whose headers make sense
/// and whose decode fits [`MAX_DECODE_BYTES`] (for the default [`MAX_LONG_SIDE`]). Returns its
/// width and height. Allocates nothing large.
pub fn check(bytes: &[u8]) -> Result<(u32, u32), ImageError> {
    let e = estimate(bytes, MAX_LONG_SIDE)?;
    Ok((e.width as u32, e.height as u32))
}

/// What preparing `bytes` with a long side of `max_long` would take, from the headers alone;
/// `TooLarge` when it is over [`MAX_DECODE_BYTES`].
pub fn estimate(bytes: &[u8], max_long: usize) -> Result<Estimate, ImageError> {
    plan(bytes, max_long).map(|p| p.estimate)
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

/// An image checked against the budget, with what its decode needs.
struct Plan<'a> {
    estimate: Estimate,
    source: Source<'a>,
}

enum Source<'a> {
    /// The JPEG as the decoder reads it: standard Huffman tables added when it has none.
    Jpeg(Cow<'a, [u8]>),
    Png(PngHeader),
}

fn plan(bytes: &[u8], max_long: usize) -> Result<Plan<'_>, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let plan = match sniff(bytes) {
        Some("JPEG") => plan_jpeg(bytes, max_long)?,
        Some("PNG") => plan_png(bytes, max_long)?,
        Some(other) => return Err(ImageError::Unsupported(other)),
        None => return Err(ImageError::Unsupported("not an image")),
    };
    within_budget(&plan.estimate)?;
    Ok(plan)
}

fn within_budget(e: &Estimate) -> Result<(), ImageError> {
    if e.bytes > MAX_DECODE_BYTES as u64 {
        return Err(ImageError::TooLarge {
            width: e.width,
            height: e.height,
        });
    }
    Ok(())
}

fn check_size(format: &'static str, width: usize, height: usize) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Decode {
            format,
            reason: "zero width or height".into(),
        });
    }
    if width > MAX_SOURCE_SIDE || height > MAX_SOURCE_SIDE {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

/// What is held once the decoder is done: the RGB image (`rgb_with`: and whatever the decoder
/// returned beside it while our copy is made), then the downscaled copy with the filter's
/// weights and rows, then the JPEG being written and the encoder's rows. The most at once.
fn after_decode(width: usize, height: usize, rgb_with: u64, max_long: usize) -> u64 {
    let (w, h) = (width as u64, height as u64);
    let rgb = w * h * 3;
    let (dw, dh) = fit(width, height, max_long);
    let (dw, dh) = (dw as u64, dh as u64);
    let scaled = (dw, dh) != (w, h);
    let out = dw * dh * 3;
    let resize = if scaled {
        // The output, `area_weights` for both axes (an index and a Vec of about
        // `src / dst + 2` weights per output index), two f32 rows.
        rgb + out + 48 * (w + h) + 16 * (dw + dh) + 24 * dw
    } else {
        0
    };
    // The JPEG Vec (quality 85 stays well under the raw size; growth doubles it at most) and
    // the encoder's three 16-line rows.
    let encode = if scaled { out } else { rgb } + 2 * out + 3 * (dw + 16) * 16 + (128 << 10);
    (rgb + rgb_with).max(resize).max(encode)
}

// ---- PNG ----------------------------------------------------------------------------------

/// IHDR and what the other chunks add to a decode, read by walking the chunks (no inflating).
#[derive(Debug, Clone, Copy)]
struct PngHeader {
    width: usize,
    height: usize,
    /// 1, 2, 4, 8 or 16.
    depth: u8,
    /// PNG colour type: 0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.
    colour: u8,
    trns: bool,
    /// The largest frame size of the IHDR and any APNG `fcTL` (zune-png sizes its buffers by
    /// the frame's, which an `fcTL` before the image data sets, unchecked against IHDR).
    frame_width: usize,
    frame_height: usize,
}

impl PngHeader {
    /// Channels in the file (a palette index is one).
    fn channels(&self) -> u64 {
        match self.colour {
            2 => 3,
            4 => 2,
            6 => 4,
            _ => 1,
        }
    }

    /// Channels zune-png returns: palette expanded to RGB, tRNS adds alpha.
    fn out_channels(&self) -> usize {
        match (self.colour, self.trns) {
            (0, false) => 1,
            (0, true) | (4, _) => 2,
            (2, false) | (3, false) => 3,
            _ => 4,
        }
    }
}

fn be32(b: &[u8], at: usize) -> Option<usize> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn plan_png(bytes: &[u8], max_long: usize) -> Result<Plan<'_>, ImageError> {
    let bad = |reason: String| ImageError::Decode {
        format: "PNG",
        reason,
    };
    if be32(bytes, 8) != Some(13) || bytes.get(12..16) != Some(b"IHDR") || bytes.len() < 33 {
        return Err(bad("no IHDR chunk".into()));
    }
    let (width, height) = (be32(bytes, 16).unwrap_or(0), be32(bytes, 20).unwrap_or(0));
    let (depth, colour, interlaced) = (bytes[24], bytes[25], bytes[28]);
    let valid = match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    if !valid {
        return Err(bad(format!("colour type {colour} with bit depth {depth}")));
    }
    if interlaced > 1 {
        return Err(bad(format!("interlace method {interlaced}")));
    }
    check_size("PNG", width, height)?;
    let mut h = PngHeader {
        width,
        height,
        depth,
        colour,
        trns: false,
        frame_width: width,
        frame_height: height,
    };
    // Bytes zune-png copies or inflates while it reads the chunks.
    let (mut image_data, mut meta) = (0u64, 0u64);
    let mut pos = 8usize;
    while let Some((len, start)) = be32(bytes, pos)
        .zip(pos.checked_add(8))
        .filter(|&(_, start)| start <= bytes.len())
    {
        let kind = &bytes[pos + 4..start];
        // A truncated last chunk: what is there (the decoder will refuse it anyway).
        let have = len.min(bytes.len().saturating_sub(start)) as u64;
        match kind {
            // Image data, gathered into one Vec that grows by doubling.
            b"IDAT" | b"fdAT" => image_data += have,
            b"tRNS" => h.trns = true,
            b"fcTL" => {
                h.frame_width = h.frame_width.max(be32(bytes, start + 4).unwrap_or(0));
                h.frame_height = h.frame_height.max(be32(bytes, start + 8).unwrap_or(0));
            }
            // Inflated while the headers are read (up to 1 GiB each): deflate expands at most
            // 1032:1, into a Vec that starts at 37,000 bytes and grows by doubling; the decoder
            // clones its header information once more when it decodes.
            b"iCCP" | b"zTXt" => meta += 3 * (1032 * have + 64).min(1 << 30) + 37_000,
            // Copied, and cloned as above.
            b"tEXt" | b"iTXt" | b"eXIf" => meta += 2 * have,
            b"IEND" => break,
            _ => {}
        }
        pos = start.saturating_add(len).saturating_add(4);
    }
    check_size("PNG", h.frame_width, h.frame_height)?;
    let (fw, fh) = (h.frame_width as u64, h.frame_height as u64);
    let bytes_per_sample = if depth == 16 { 2 } else { 1 };
    // The decoded image at the source bit depth, before 16 -> 8 bits (done in place).
    let decoded = fw * fh * h.out_channels() as u64 * bytes_per_sample;
    // Adam7: a second image-sized buffer while the passes are put in place.
    let deinterlace = if interlaced == 1 { decoded } else { 0 };
    // The inflated rows: a Vec of (width + 1) x height x channels x bytes per sample, which a
    // crafted stream can make grow (doubling) up to its limit of 4 bytes a row more.
    let inflated = 2 * ((fw + 1) * fh * bytes_per_sample * h.channels() + 4 * fh) + (64 << 10);
    let row = fw * 4 * bytes_per_sample;
    let decoding = meta + 2 * image_data + decoded + deinterlace + inflated + row;
    let estimate = Estimate {
        format: "PNG",
        width,
        height,
        bytes: FIXED_BYTES + decoding.max(after_decode(width, height, decoded, max_long)),
    };
    Ok(Plan {
        estimate,
        source: Source::Png(h),
    })
}

/// Decodes a PNG (any bit depth, palette, grey or colour, with or without alpha; the first
/// frame of an animated PNG). Transparent pixels are composited over black.
fn decode_png(bytes: &[u8], h: &PngHeader) -> Result<Rgb, ImageError> {
    use zune_png::zune_core::bit_depth::BitDepth;
    use zune_png::zune_core::bytestream::ZCursor;
    use zune_png::zune_core::colorspace::ColorSpace;
    use zune_png::zune_core::options::DecoderOptions;
    let err = |e: &dyn std::fmt::Display| ImageError::Decode {
        format: "PNG",
        reason: e.to_string(),
    };
    // No added alpha channel: grey stays one byte a pixel and RGB three.
    let opts = DecoderOptions::default()
        .png_set_strip_to_8bit(true)
        .png_set_add_alpha_channel(false)
        .png_set_decode_animated(false)
        .set_max_width(MAX_SOURCE_SIDE)
        .set_max_height(MAX_SOURCE_SIDE);
    let (width, height) = (h.width, h.height);
    let (space, mut data) = {
        let mut d = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), opts);
        d.decode_headers().map_err(|e| err(&e))?;
        // The decoder must see what the estimate was made from.
        let depth = if h.depth == 16 {
            BitDepth::Sixteen
        } else {
            BitDepth::Eight
        };
        let space = d.colorspace().ok_or_else(|| err(&"no colour space"))?;
        let frame_fits = d
            .frame_info()
            .is_some_and(|f| f.width <= h.frame_width && f.height <= h.frame_height);
        if d.dimensions() != Some((width, height))
            || d.depth() != Some(depth)
            || space.num_components() != h.out_channels()
            || !frame_fits
        {
            return Err(err(&"inconsistent headers"));
        }
        let data = d
            .decode()
            .map_err(|e| err(&e))?
            .u8()
            .ok_or_else(|| err(&"not 8-bit after conversion"))?;
        (space, data)
    };
    let n = space.num_components();
    if data.len() < width * height * n {
        return Err(err(&"short decode"));
    }
    let over_black = |c: u8, a: u8| ((c as u32 * a as u32 + 127) / 255) as u8;
    let pixels = match space {
        ColorSpace::RGB => {
            // A 16-bit image was stripped to 8 bits in place: give back the other half.
            data.truncate(width * height * 3);
            data.shrink_to_fit();
            data
        }
        ColorSpace::RGBA => {
            let mut pixels = Vec::with_capacity(width * height * 3);
            for p in data.chunks_exact(4).take(width * height) {
                let a = p[3];
                pixels.extend_from_slice(&[
                    over_black(p[0], a),
                    over_black(p[1], a),
                    over_black(p[2], a),
                ]);
            }
            pixels
        }
        ColorSpace::LumaA => {
            let mut pixels = Vec::with_capacity(width * height * 3);
            for p in data.chunks_exact(2).take(width * height) {
                let l = over_black(p[0], p[1]);
                pixels.extend_from_slice(&[l, l, l]);
            }
            pixels
        }
        ColorSpace::Luma => {
            let mut pixels = Vec::with_capacity(width * height * 3);
            for &l in &data[..width * height] {
                pixels.extend_from_slice(&[l, l, l]);
            }
            pixels
        }
        other => return Err(err(&format!("colour space {other:?}"))),
    };
    Ok(Rgb {
        width,
        height,
        pixels,
    })
}

// ---- JPEG ---------------------------------------------------------------------------------

/// The frame header (SOF) and first scan header (SOS) of a JPEG, read by walking its segments.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JpegFrame {
    width: usize,
    height: usize,
    /// Horizontal and vertical sampling factors of each component.
    components: Vec<(u64, u64)>,
    progressive: bool,
    /// Components in the first scan: fewer than all means a non-interleaved baseline image,
    /// which zune-jpeg decodes into whole-image coefficient buffers, as a progressive one.
    first_scan: usize,
}

/// `None` when the segments cannot be walked cleanly up to the first scan (then the estimate
/// assumes the worst the decoder allows).
fn jpeg_frame(b: &[u8]) -> Option<JpegFrame> {
    let mut i = 2;
    let mut frame: Option<JpegFrame> = None;
    loop {
        if *b.get(i)? != 0xFF {
            return None;
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let marker = *b.get(i)?;
        i += 1;
        match marker {
            0x01 | 0xD0..=0xD8 => continue,
            0xD9 => return None,
            _ => {}
        }
        let len = u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]) as usize;
        let seg = b.get(i + 2..i + len)?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                if frame.is_some() {
                    return None;
                }
                let n = *seg.get(5)? as usize;
                let mut components = Vec::with_capacity(n);
                for k in 0..n {
                    let hv = *seg.get(6 + 3 * k + 1)?;
                    let (h, v) = ((hv >> 4) as u64, (hv & 15) as u64);
                    if h == 0 || v == 0 {
                        return None;
                    }
                    components.push((h, v));
                }
                frame = Some(JpegFrame {
                    height: u16::from_be_bytes([seg[1], seg[2]]) as usize,
                    width: u16::from_be_bytes([seg[3], seg[4]]) as usize,
                    components,
                    progressive: marker == 0xC2,
                    first_scan: 0,
                });
            }
            0xDA => {
                let mut f = frame?;
                f.first_scan = *seg.first()? as usize;
                return Some(f);
            }
            _ => {}
        }
        i += len;
    }
}

/// The most zune-jpeg and this module hold at once for a JPEG: the input copy with Huffman
/// tables (`copy`), the metadata segments it keeps (at most twice the input), the RGB output,
/// whole-image coefficient buffers (progressive or non-interleaved: 2 bytes per coefficient,
/// padded to whole MCUs), and its per-MCU-row buffers; then what follows the decode.
fn jpeg_bytes(
    width: usize,
    height: usize,
    frame: Option<&JpegFrame>,
    components: usize,
    input: usize,
    copy: usize,
    max_long: usize,
) -> u64 {
    // Unknown sampling factors: the worst the decoder allows (4x4), for every component.
    let (sampling, full_coefficients, worst): (Vec<(u64, u64)>, bool, bool) = match frame {
        Some(f) => (
            f.components.clone(),
            f.progressive || f.first_scan < f.components.len(),
            false,
        ),
        None => (vec![(4, 4); components.max(1)], true, true),
    };
    let h_max = sampling.iter().map(|s| s.0).max().unwrap_or(1);
    let v_max = sampling.iter().map(|s| s.1).max().unwrap_or(1);
    let (w, h) = (width as u64, height as u64);
    let mcu_x = w.div_ceil(8 * h_max);
    let mcu_y = h.div_ceil(8 * v_max);
    let (mut coefficients, mut rows) = (0u64, 0u64);
    for &(hs, vs) in &sampling {
        if full_coefficients {
            coefficients += mcu_x * mcu_y * 64 * hs * vs * 2;
        }
        // Per component, in i16: a row of MCUs of coefficients, the upsampled row (resized to
        // twice that), the rows above and below, the first row's upsampling.
        let stride = hs * mcu_x * 8;
        let ratio = if worst {
            16
        } else {
            h_max.div_ceil(hs) * v_max.div_ceil(vs)
        };
        rows += 2 * stride * (24 * vs + 8 * ratio + 2 * vs + vs * ratio);
    }
    // Twice that, for what we missed, and the upsampler's scratch rows.
    rows = 2 * rows + 2 * (h_max * mcu_x * 8) * 8 * 2;
    let decoded = w * h * 3;
    let decoding = copy as u64 + 2 * input as u64 + decoded + coefficients + rows;
    FIXED_BYTES + decoding.max(after_decode(width, height, 0, max_long))
}

fn plan_jpeg(bytes: &[u8], max_long: usize) -> Result<Plan<'_>, ImageError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let err = |e: &dyn std::fmt::Display| ImageError::Decode {
        format: "JPEG",
        reason: e.to_string(),
    };
    // Our own reading of the frame header first: a huge image is refused before the decoder
    // copies anything.
    let frame = jpeg_frame(bytes);
    if let Some(f) = &frame {
        check_size("JPEG", f.width, f.height)?;
        within_budget(&Estimate {
            format: "JPEG",
            width: f.width,
            height: f.height,
            bytes: jpeg_bytes(f.width, f.height, Some(f), 0, bytes.len(), 0, max_long),
        })?;
    }
    // Webcam MJPEG frames often omit the standard Huffman tables.
    let fixed = crate::video::jpeg::with_huffman_tables(bytes);
    let copy = match &fixed {
        Cow::Owned(v) => v.capacity(),
        Cow::Borrowed(_) => 0,
    };
    let (width, height, components) = {
        let opts = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::RGB)
            .set_max_width(MAX_SOURCE_SIDE)
            .set_max_height(MAX_SOURCE_SIDE);
        let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&fixed[..]), opts);
        d.decode_headers().map_err(|e| err(&e))?;
        let (w, h) = d.dimensions().ok_or_else(|| err(&"no dimensions"))?;
        let n = d
            .input_colorspace()
            .map(|c| c.num_components())
            .unwrap_or(4);
        (w, h, n)
    };
    check_size("JPEG", width, height)?;
    // The decoder's reading decides; ours only adds the sampling factors when it agrees.
    let frame =
        frame.filter(|f| (f.width, f.height, f.components.len()) == (width, height, components));
    let estimate = Estimate {
        format: "JPEG",
        width,
        height,
        bytes: jpeg_bytes(
            width,
            height,
            frame.as_ref(),
            components,
            bytes.len(),
            copy,
            max_long,
        ),
    };
    Ok(Plan {
        estimate,
        source: Source::Jpeg(fixed),
    })
}

fn decode_jpeg(data: &[u8], e: &Estimate) -> Result<Rgb, ImageError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::colorspace::ColorSpace;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let err = |e: &dyn std::fmt::Display| ImageError::Decode {
        format: "JPEG",
        reason: e.to_string(),
    };
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_SOURCE_SIDE)
        .set_max_height(MAX_SOURCE_SIDE);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(data), opts);
    d.decode_headers().map_err(|e| err(&e))?;
    let (width, height) = d.dimensions().ok_or_else(|| err(&"no dimensions"))?;
    if (width, height) != (e.width, e.height) {
        return Err(err(&"inconsistent headers"));
    }
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

    fn ihdr(w: usize, h: usize, depth: u8, colour_type: u8, interlace: u8) -> Vec<u8> {
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&(w as u32).to_be_bytes());
        ihdr.extend_from_slice(&(h as u32).to_be_bytes());
        ihdr.extend_from_slice(&[depth, colour_type, 0, 0, interlace]);
        ihdr
    }

    /// A minimal PNG writer (stored deflate blocks), enough to test the decoder path.
    fn png(w: usize, h: usize, colour_type: u8, channels: usize, px: &[u8]) -> Vec<u8> {
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
        chunk(&mut out, b"IHDR", &ihdr(w, h, 8, colour_type, 0));
        chunk(&mut out, b"IDAT", &z);
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// zlib-compresses rows one at a time (a 288 MB image never needs to exist at once).
    fn zlib_rows(rows: impl Iterator<Item = Vec<u8>>) -> Vec<u8> {
        use miniz_oxide::deflate::core::{
            compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
            TDEFLStatus,
        };
        let mut c = CompressorOxide::new(create_comp_flags_from_zip_params(6, 1, 0));
        let mut out = Vec::new();
        for row in rows {
            let (status, used) = compress_to_output(&mut c, &row, TDEFLFlush::None, |b| {
                out.extend_from_slice(b);
                true
            });
            assert_eq!((status, used), (TDEFLStatus::Okay, row.len()));
        }
        let (status, _) = compress_to_output(&mut c, &[], TDEFLFlush::Finish, |b| {
            out.extend_from_slice(b);
            true
        });
        assert_eq!(status, TDEFLStatus::Done);
        out
    }

    /// A real PNG: `row(y)` gives row `y`'s bytes (without the filter byte, which is 0);
    /// `extra` chunks go between IHDR and IDAT. Adam7 when `interlaced`, where `row` is asked
    /// for every source row and the passes are cut out of them.
    fn png_file(
        (w, h): (usize, usize),
        depth: u8,
        colour_type: u8,
        interlaced: bool,
        extra: &[(&[u8; 4], Vec<u8>)],
        row: impl Fn(usize) -> Vec<u8>,
    ) -> Vec<u8> {
        let z = if interlaced {
            assert_eq!(depth % 8, 0, "whole bytes per pixel only");
            let bpp = row(0).len() / w;
            const PASSES: [(usize, usize, usize, usize); 7] = [
                (0, 0, 8, 8),
                (4, 0, 8, 8),
                (0, 4, 4, 8),
                (2, 0, 4, 4),
                (0, 2, 2, 4),
                (1, 0, 2, 2),
                (0, 1, 1, 2),
            ];
            let mut rows = Vec::new();
            for (x0, y0, dx, dy) in PASSES {
                if x0 >= w || y0 >= h {
                    continue;
                }
                for y in (y0..h).step_by(dy) {
                    let src = row(y);
                    let mut r = vec![0u8];
                    for x in (x0..w).step_by(dx) {
                        r.extend_from_slice(&src[x * bpp..(x + 1) * bpp]);
                    }
                    rows.push(r);
                }
            }
            zlib_rows(rows.into_iter())
        } else {
            zlib_rows((0..h).map(|y| {
                let mut r = vec![0u8];
                r.extend_from_slice(&row(y));
                r
            }))
        };
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(
            &mut out,
            b"IHDR",
            &ihdr(w, h, depth, colour_type, interlaced as u8),
        );
        for (kind, data) in extra {
            chunk(&mut out, kind, data);
        }
        // In 64 KiB IDAT chunks, as encoders write them.
        for part in z.chunks(65536) {
            chunk(&mut out, b"IDAT", part);
        }
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// The upload: 280 KB that decode to 6000x6000 16-bit RGBA (just inside the old
    /// 40-megapixel limit).
    fn crafted_png() -> &'static [u8] {
        static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        PNG.get_or_init(|| png_file((6000, 6000), 16, 6, false, &[], |_| vec![0; 6000 * 8]))
    }

    /// Pseudo-random bytes (xorshift), for image content that does not compress to nothing.
    fn noise(seed: u64) -> impl FnMut() -> u8 {
        let mut x = seed | 1;
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        }
    }

    /// A photo-like RGB picture: gradients plus some noise.
    fn photo(w: usize, h: usize) -> Vec<u8> {
        let mut n = noise(w as u64 * 31 + h as u64);
        let mut px = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                px.push(((x * 255 / w) as u8).wrapping_add(n() % 24));
                px.push(((y * 255 / h) as u8).wrapping_add(n() % 24));
                px.push((((x + y) * 127 / (w + h)) as u8).wrapping_add(n() % 24));
            }
        }
        px
    }

    fn jpeg_of(rgb: &[u8], w: usize, h: usize, quality: u8, progressive: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = jpeg_encoder::Encoder::new(&mut out, quality);
        e.set_progressive(progressive);
        e.encode(rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        out
    }

    /// The same JPEG with its frame header claiming another size (headers-only tests).
    fn with_jpeg_size(mut jpeg: Vec<u8>, w: u16, h: u16) -> Vec<u8> {
        let sof = jpeg
            .windows(2)
            .position(|m| m == [0xFF, 0xC0] || m == [0xFF, 0xC2])
            .unwrap();
        jpeg[sof + 5..sof + 7].copy_from_slice(&h.to_be_bytes());
        jpeg[sof + 7..sof + 9].copy_from_slice(&w.to_be_bytes());
        jpeg
    }

    /// The same JPEG without its Huffman tables, as webcam MJPEG frames come.
    fn without_dht(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
            let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
            if jpeg[i + 1] != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out.extend_from_slice(&jpeg[i..]);
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
    fn a_crafted_16_bit_png_over_the_budget_is_refused_before_any_large_allocation() {
        let png = crafted_png();
        assert!(png.len() < 400_000, "{} bytes", png.len());
        let e = estimate(png, MAX_LONG_SIDE).unwrap_err();
        assert_eq!(
            e,
            ImageError::TooLarge {
                width: 6000,
                height: 6000
            }
        );
        assert!(e.to_string().contains("128 MiB"), "{e}");
        // What the decode would need (`plan_png` does not apply the budget): the 16-bit RGBA
        // image (288 MB) and its inflated rows (288 MB more, in a Vec that may double).
        let need = plan_png(png, MAX_LONG_SIDE).unwrap().estimate.bytes;
        assert!(need > 2 * 288_000_000, "{need}");
        eprintln!(
            "crafted PNG ({} KB): estimate {} MiB",
            png.len() >> 10,
            need >> 20
        );
        let (r, peak) = crate::test_alloc::peak_during(|| prepare(png));
        assert_eq!(
            r,
            Err(ImageError::TooLarge {
                width: 6000,
                height: 6000
            })
        );
        assert!(peak < 64 << 10, "refusing it allocated {peak} bytes");
        assert!(check(png).is_err());
    }

    #[test]
    fn camera_sized_images_fit_the_budget() {
        // An 8-bit 4K PNG decodes (its estimate holds what it really allocates).
        let png4k = png_file((3840, 2160), 8, 2, false, &[], |_| vec![0; 3840 * 3]);
        assert_eq!(check(&png4k), Ok((3840, 2160)));
        let e = estimate(&png4k, MAX_LONG_SIDE).unwrap();
        let (p, peak) = crate::test_alloc::peak_during(|| prepare(&png4k));
        assert_eq!((p.unwrap().width, peak as u64 <= e.bytes), (1280, true));
        eprintln!(
            "4K RGB PNG: estimate {} MiB, peak {} MiB",
            e.bytes >> 20,
            peak >> 20
        );

        // 8-bit RGB and RGBA 4K PNGs with realistic amounts of compressed data and a small
        // colour profile (only the lengths matter to the estimate, so the data is left out).
        let claims = |colour: u8, idat: usize| {
            let mut p = b"\x89PNG\r\n\x1a\n".to_vec();
            chunk(&mut p, b"IHDR", &ihdr(3840, 2160, 8, colour, 0));
            chunk(&mut p, b"iCCP", &[0u8; 600]);
            chunk(&mut p, b"IDAT", &vec![0u8; idat]);
            chunk(&mut p, b"IEND", &[]);
            p
        };
        for (colour, idat) in [(2, 16 << 20), (6, 12 << 20)] {
            let e = estimate(&claims(colour, idat), MAX_LONG_SIDE).unwrap();
            eprintln!(
                "4K PNG colour type {colour}, {} MiB of data: {} MiB",
                idat >> 20,
                e.bytes >> 20
            );
        }
        // ...but not a 16-bit one.
        let png16 = png_file((3840, 2160), 16, 2, false, &[], |_| vec![0; 3840 * 6]);
        assert!(matches!(
            check(&png16),
            Err(ImageError::TooLarge { width: 3840, .. })
        ));

        // Camera JPEGs: 4K and 12 MP, baseline 4:2:0 and progressive 4:4:4, with a file as
        // large as a high-quality camera writes (the estimate counts it twice for metadata).
        let rgb = photo(64, 48);
        for (quality, progressive, w, h) in [
            (85, false, 3840, 2160),
            (95, true, 3840, 2160),
            (85, false, 4000, 3000),
            (85, true, 4000, 3000),
            (95, true, 4000, 3000),
        ] {
            let mut j = with_jpeg_size(jpeg_of(&rgb, 64, 48, quality, progressive), w, h);
            let eoi = j.len() - 2;
            j.splice(eoi..eoi, std::iter::repeat_n(0x55, 8 << 20));
            let e = estimate(&j, MAX_LONG_SIDE).unwrap();
            eprintln!(
                "{w}x{h} JPEG q{quality} progressive={progressive}, 8 MB: {} MiB",
                e.bytes >> 20
            );
            assert!(e.bytes <= MAX_DECODE_BYTES as u64);
        }
        // A huge one is refused from its headers.
        let huge = with_jpeg_size(jpeg_of(&rgb, 64, 48, 85, false), 12000, 12000);
        assert_eq!(
            check(&huge),
            Err(ImageError::TooLarge {
                width: 12000,
                height: 12000
            })
        );
    }

    #[test]
    fn the_estimate_bounds_what_a_decode_allocates() {
        let (w, h) = (1600, 1200);
        let rgb = photo(w, h);
        let rgb_rows = |y: usize| rgb[y * w * 3..(y + 1) * w * 3].to_vec();
        let grey = |y: usize| {
            (0..1024)
                .map(|x| ((x ^ y) & 0xFF) as u8)
                .collect::<Vec<_>>()
        };
        let rgba16 = |y: usize| {
            (0..640)
                .flat_map(|x| {
                    let v = ((x * 97 + y * 13) % 65536) as u16;
                    [v, v / 2, 65535 - v, 40000]
                        .into_iter()
                        .flat_map(u16::to_be_bytes)
                })
                .collect::<Vec<_>>()
        };
        let mut palette = Vec::new();
        for i in 0..256u32 {
            palette.extend_from_slice(&[i as u8, (i * 7) as u8, (255 - i) as u8]);
        }
        let trns: Vec<u8> = (0..256).map(|i| if i < 16 { 0 } else { 255 }).collect();
        let mut n = noise(7);
        let indices: Vec<u8> = (0..800 * 600).map(|_| n()).collect();
        let icc = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 1 << 20], 6);
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend_from_slice(&icc);
        let grey_small = vec![128u8; 640 * 480];
        let luma = {
            let mut out = Vec::new();
            jpeg_encoder::Encoder::new(&mut out, 90)
                .encode(&grey_small, 640, 480, jpeg_encoder::ColorType::Luma)
                .unwrap();
            out
        };
        let jpeg420 = jpeg_of(&rgb, w, h, 85, false);
        let images: Vec<(&str, Vec<u8>)> = vec![
            (
                "8-bit RGB PNG",
                png_file((w, h), 8, 2, false, &[], rgb_rows),
            ),
            (
                "8-bit RGB PNG, Adam7",
                png_file((w, h), 8, 2, true, &[], rgb_rows),
            ),
            (
                "16-bit RGBA PNG",
                png_file((640, 480), 16, 6, false, &[], rgba16),
            ),
            (
                "8-bit grey PNG",
                png_file((1024, 768), 8, 0, false, &[], grey),
            ),
            (
                "palette PNG with tRNS and iCCP",
                png_file(
                    (800, 600),
                    8,
                    3,
                    false,
                    &[(b"iCCP", iccp), (b"PLTE", palette), (b"tRNS", trns)],
                    |y| indices[y * 800..(y + 1) * 800].to_vec(),
                ),
            ),
            ("baseline JPEG 4:2:0", jpeg420.clone()),
            ("baseline JPEG without DHT", without_dht(&jpeg420)),
            ("progressive JPEG 4:2:0", jpeg_of(&rgb, w, h, 80, true)),
            ("progressive JPEG 4:4:4", jpeg_of(&rgb, w, h, 95, true)),
            ("grey JPEG", luma),
        ];
        for (name, bytes) in &images {
            for max_long in [MAX_LONG_SIDE, 640] {
                let e = estimate(bytes, max_long).unwrap();
                let (r, peak) = crate::test_alloc::peak_during(|| prepare_within(bytes, max_long));
                let p = r.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(p.width.max(p.height) <= max_long, "{name}");
                eprintln!(
                    "{name} ({}x{}, {} KB) to {max_long}: peak {} KB, estimate {} KB ({:.2}x)",
                    e.width,
                    e.height,
                    bytes.len() >> 10,
                    peak >> 10,
                    e.bytes >> 10,
                    e.bytes as f64 / peak as f64
                );
                assert!(
                    peak as u64 <= e.bytes,
                    "{name}: allocated {peak} bytes, estimated {}",
                    e.bytes
                );
            }
        }
    }

    #[test]
    fn png_kinds_decode_to_the_right_colours() {
        let centre = |png: &[u8]| {
            let p = prepare(png).unwrap();
            let f = Frame420::from_jpeg(&p.jpeg).unwrap();
            f.y[(f.height / 2) * f.width + f.width / 2] as i32
        };
        // Palette with tRNS: entry 1 is half-transparent white, over black: mid grey.
        let plte = vec![0, 0, 0, 255, 255, 255];
        let p = png_file(
            (16, 16),
            8,
            3,
            false,
            &[(b"PLTE", plte.clone()), (b"tRNS", vec![255, 128])],
            |_| vec![1; 16],
        );
        assert!((centre(&p) - 128).abs() < 4);
        // The same without tRNS: white.
        let p = png_file((16, 16), 8, 3, false, &[(b"PLTE", plte)], |_| vec![1; 16]);
        assert!(centre(&p) > 250);
        // 16-bit grey and grey + alpha; 1-bit grey; 16-bit RGB; Adam7 RGB.
        let p = png_file((16, 16), 16, 0, false, &[], |_| [0x80u8, 0].repeat(16));
        assert!((centre(&p) - 128).abs() < 4);
        let p = png_file((16, 16), 8, 4, false, &[], |_| [255u8, 128].repeat(16));
        assert!((centre(&p) - 128).abs() < 4);
        let p = png_file((16, 16), 1, 0, false, &[], |_| vec![0xFF; 2]);
        assert!(centre(&p) > 250);
        let p = png_file((16, 16), 16, 2, false, &[], |_| [0x80u8, 0].repeat(48));
        assert!((centre(&p) - 128).abs() < 4);
        let p = png_file((17, 13), 8, 2, true, &[], |_| vec![200; 17 * 3]);
        assert!((centre(&p) - 200).abs() < 4);
    }

    #[test]
    fn headers_that_hide_memory_are_counted() {
        // A compressed ICC profile that inflates to 150 MB, in a 1x1 PNG.
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 150 << 20], 10);
        let mut iccp = b"icc\0\0".to_vec();
        iccp.extend_from_slice(&bomb);
        let p = png_file((1, 1), 8, 2, false, &[(b"iCCP", iccp)], |_| vec![0; 3]);
        assert_eq!(
            check(&p),
            Err(ImageError::TooLarge {
                width: 1,
                height: 1
            })
        );
        // An APNG frame larger than the image it is part of.
        let mut fctl = vec![0u8; 26];
        fctl[4..8].copy_from_slice(&15000u32.to_be_bytes());
        fctl[8..12].copy_from_slice(&15000u32.to_be_bytes());
        let p = png_file(
            (16, 16),
            16,
            6,
            false,
            &[(b"acTL", vec![0, 0, 0, 1, 0, 0, 0, 0]), (b"fcTL", fctl)],
            |_| vec![0; 16 * 8],
        );
        assert!(matches!(check(&p), Err(ImageError::TooLarge { .. })));
    }

    #[tokio::test]
    async fn the_bounded_entry_point_refuses_and_prepares() {
        let r = prepare_bounded(crafted_png(), MAX_LONG_SIDE).await;
        assert!(matches!(r, Err(ImageError::TooLarge { .. })));
        let jpeg = jpeg_of(&photo(320, 240), 320, 240, 85, false);
        let p = prepare_bounded(jpeg, 160).await.unwrap();
        assert_eq!((p.width, p.height), (160, 120));
        assert_eq!(
            DECODES.available_permits(),
            MAX_CONCURRENT_DECODES,
            "slots are given back"
        );
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
