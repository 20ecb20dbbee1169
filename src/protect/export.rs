//! The console's video export (`GET /proxy/protect/api/video/export`), on the appliance's side:
//! streaming the answer to a file within a size limit, and checking that what arrived is an MP4
//! with a duration, by walking its top-level boxes (`ftyp` first, a `moov` with an `mvhd`).
//!
//! Only what the appliance needs of the file is read: box headers, and `mvhd` (or, in a
//! fragmented file whose `mvhd` has no duration, `mvex/mehd`). The request itself, with the
//! session and the re-login on 401, is [`super::ProtectClient::export_video`].

use super::ProtectError;
use bytes::Bytes;
use http_body_util::BodyExt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// What an export brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportedVideo {
    /// Bytes written to the file.
    pub bytes: u64,
    /// The duration the file's `mvhd` (or `mehd`) gives, in milliseconds.
    pub duration_ms: u64,
}

/// Why an export failed, and whether trying again later may help.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Worth another try later: 404 (the console has not made the export yet), 408, 429, 5xx,
    /// no connection, a timeout, an answer cut short or one that is not (yet) an MP4.
    #[error("{0}")]
    Transient(ProtectError),
    /// Not worth another try: refused credentials or rights, another 4xx, a bad camera id or
    /// window, an export larger than the limit.
    #[error("{0}")]
    Refused(ProtectError),
    /// The file could not be written.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

impl ExportError {
    pub fn is_transient(&self) -> bool {
        matches!(self, ExportError::Transient(_))
    }

    /// An error of a call to the console (login, connection), classified.
    pub(super) fn from_call(e: ProtectError) -> ExportError {
        match e {
            ProtectError::Unreachable(_) | ProtectError::Timeout | ProtectError::Protocol(_) => {
                ExportError::Transient(e)
            }
            ProtectError::BadCredentials | ProtectError::Tls(_) | ProtectError::InvalidInput(_) => {
                ExportError::Refused(e)
            }
        }
    }

    fn invalid(msg: String) -> ExportError {
        ExportError::Transient(ProtectError::Protocol(msg))
    }
}

/// Writes an answer's body to `dest` chunk by chunk: at most `limit` bytes, and no wait longer
/// than `stall` for the next chunk. The first bytes must start an `ftyp` box (a console that
/// answers 200 with an error page is caught before it is written out). Then checks the file
/// (see [`inspect`]). The file is left in place on error; the caller removes it.
pub(super) async fn save<B>(
    mut body: B,
    dest: &Path,
    limit: u64,
    stall: Duration,
) -> Result<ExportedVideo, ExportError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let mut file = tokio::fs::File::create(dest).await?;
    let mut written: u64 = 0;
    let mut head: Vec<u8> = Vec::with_capacity(8);
    loop {
        let frame = match tokio::time::timeout(stall, body.frame()).await {
            Err(_) => {
                return Err(ExportError::Transient(ProtectError::Protocol(format!(
                    "the export stalled (nothing for {} s after {written} bytes)",
                    stall.as_secs()
                ))))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ExportError::Transient(ProtectError::Protocol(format!(
                    "the export was cut short after {written} bytes: {e}"
                ))))
            }
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        written += chunk.len() as u64;
        if written > limit {
            return Err(ExportError::Refused(ProtectError::Protocol(format!(
                "the export is larger than {} MiB",
                limit >> 20
            ))));
        }
        if head.len() < 8 {
            let take = (8 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
            if head.len() == 8 && &head[4..8] != b"ftyp" {
                return Err(ExportError::invalid(
                    "the export is not an MP4 (it does not start with an ftyp box)".into(),
                ));
            }
        }
        file.write_all(&chunk).await?;
    }
    file.flush().await?;
    drop(file);
    if head.len() < 8 {
        return Err(ExportError::invalid(format!(
            "the export is empty or too short ({written} bytes)"
        )));
    }
    let path = dest.to_path_buf();
    let info = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(path)?;
        Ok::<_, std::io::Error>(inspect(std::io::BufReader::new(f)))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()))??;
    let duration_ms = info.map_err(|m| ExportError::invalid(format!("the export: {m}")))?;
    Ok(ExportedVideo {
        bytes: written,
        duration_ms,
    })
}

/// One box header: where its payload starts and ends.
struct BoxHead {
    kind: [u8; 4],
    /// Offset of the payload (after the header).
    body: u64,
    /// Offset just past the box.
    end: u64,
}

/// Reads the box header at `at`, which must fit inside `[at, limit)`.
fn read_head<R: Read + Seek>(r: &mut R, at: u64, limit: u64) -> Result<BoxHead, String> {
    r.seek(SeekFrom::Start(at)).map_err(|e| e.to_string())?;
    let mut h = [0u8; 8];
    r.read_exact(&mut h)
        .map_err(|_| format!("a box header at byte {at} is cut short"))?;
    let kind = [h[4], h[5], h[6], h[7]];
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let (size, header) = match size32 {
        0 => (limit - at, 8),
        1 => {
            let mut l = [0u8; 8];
            r.read_exact(&mut l)
                .map_err(|_| format!("a box header at byte {at} is cut short"))?;
            (u64::from_be_bytes(l), 16)
        }
        n => (u64::from(n), 8),
    };
    let name = String::from_utf8_lossy(&kind).into_owned();
    if size < header {
        return Err(format!(
            "the {name:?} box at byte {at} has a bad size ({size})"
        ));
    }
    let end = at
        .checked_add(size)
        .filter(|e| *e <= limit)
        .ok_or_else(|| format!("the {name:?} box at byte {at} is cut short"))?;
    Ok(BoxHead {
        kind,
        body: at + header,
        end,
    })
}

/// The boxes directly inside `[from, to)`.
fn children<R: Read + Seek>(r: &mut R, from: u64, to: u64) -> Result<Vec<BoxHead>, String> {
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        let b = read_head(r, at, to)?;
        at = b.end;
        out.push(b);
        if out.len() > 10_000 {
            return Err("too many boxes".into());
        }
    }
    Ok(out)
}

fn read_u32<R: Read>(r: &mut R) -> Result<u32, String> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)
        .map_err(|_| "a box is cut short".to_string())?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64<R: Read>(r: &mut R) -> Result<u64, String> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)
        .map_err(|_| "a box is cut short".to_string())?;
    Ok(u64::from_be_bytes(b))
}

/// `mvhd`: (timescale, duration). Version 0 has 32-bit times, version 1 64-bit ones.
fn mvhd<R: Read + Seek>(r: &mut R, b: &BoxHead) -> Result<(u32, u64), String> {
    r.seek(SeekFrom::Start(b.body)).map_err(|e| e.to_string())?;
    let version = read_u32(r)? >> 24;
    let (timescale, duration) = match version {
        0 => {
            read_u64(r)?; // creation and modification time
            (read_u32(r)?, u64::from(read_u32(r)?))
        }
        1 => {
            read_u64(r)?;
            read_u64(r)?;
            (read_u32(r)?, read_u64(r)?)
        }
        v => return Err(format!("mvhd version {v} is unknown")),
    };
    // All ones means "unknown".
    let unknown = (version == 0 && duration == u64::from(u32::MAX)) || duration == u64::MAX;
    Ok((timescale, if unknown { 0 } else { duration }))
}

/// `mehd` (in `mvex`): the duration of a fragmented file, in the movie's timescale.
fn mehd<R: Read + Seek>(r: &mut R, b: &BoxHead) -> Result<u64, String> {
    r.seek(SeekFrom::Start(b.body)).map_err(|e| e.to_string())?;
    match read_u32(r)? >> 24 {
        0 => Ok(u64::from(read_u32(r)?)),
        _ => read_u64(r),
    }
}

/// Checks a whole MP4 file: `ftyp` first, every top-level box complete, one `moov` with an
/// `mvhd` that gives a duration. The duration in milliseconds, or what is wrong.
pub fn inspect<R: Read + Seek>(mut r: R) -> Result<u64, String> {
    let len = r.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
    let top = children(&mut r, 0, len)?;
    if top.first().map(|b| &b.kind) != Some(b"ftyp") {
        return Err("it does not start with an ftyp box".into());
    }
    let moov = top
        .iter()
        .find(|b| &b.kind == b"moov")
        .ok_or("it has no moov box")?;
    let inside = children(&mut r, moov.body, moov.end)?;
    let head = inside
        .iter()
        .find(|b| &b.kind == b"mvhd")
        .ok_or("its moov has no mvhd box")?;
    let (timescale, mut duration) = mvhd(&mut r, head)?;
    if timescale == 0 {
        return Err("its mvhd has a timescale of 0".into());
    }
    if duration == 0 {
        if let Some(mvex) = inside.iter().find(|b| &b.kind == b"mvex") {
            if let Some(m) = children(&mut r, mvex.body, mvex.end)?
                .iter()
                .find(|b| &b.kind == b"mehd")
            {
                duration = mehd(&mut r, m)?;
            }
        }
    }
    if duration == 0 {
        return Err("it gives no duration".into());
    }
    Ok((u128::from(duration) * 1000 / u128::from(timescale)).min(u128::from(u64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut v = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(payload);
        v
    }

    fn mvhd_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut p = vec![0u8; 4 + 8];
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend_from_slice(&[0u8; 80]);
        boxed(b"mvhd", &p)
    }

    fn mvhd_v1(timescale: u32, duration: u64) -> Vec<u8> {
        let mut p = vec![1u8, 0, 0, 0];
        p.extend_from_slice(&[0u8; 16]);
        p.extend_from_slice(&timescale.to_be_bytes());
        p.extend_from_slice(&duration.to_be_bytes());
        p.extend_from_slice(&[0u8; 80]);
        boxed(b"mvhd", &p)
    }

    fn ftyp() -> Vec<u8> {
        boxed(b"ftyp", b"isom\0\0\x02\0isomavc1")
    }

    fn file(parts: &[Vec<u8>]) -> Cursor<Vec<u8>> {
        Cursor::new(parts.concat())
    }

    #[test]
    fn durations_from_mvhd() {
        let moov = boxed(b"moov", &mvhd_v0(1000, 4001));
        assert_eq!(inspect(file(&[ftyp(), moov.clone()])), Ok(4001));
        // mdat before moov (no fast start), and a 64-bit size.
        let mut big_mdat = 1u32.to_be_bytes().to_vec();
        big_mdat.extend_from_slice(b"mdat");
        big_mdat.extend_from_slice(&(16u64 + 3).to_be_bytes());
        big_mdat.extend_from_slice(&[1, 2, 3]);
        assert_eq!(inspect(file(&[ftyp(), big_mdat, moov])), Ok(4001));
        let moov = boxed(
            b"moov",
            &[mvhd_v1(90_000, 90_000 * 12), boxed(b"trak", &[])].concat(),
        );
        assert_eq!(inspect(file(&[ftyp(), moov])), Ok(12_000));
        // A last box of size 0 runs to the end of the file.
        let mut open_mdat = 0u32.to_be_bytes().to_vec();
        open_mdat.extend_from_slice(b"mdat");
        open_mdat.extend_from_slice(&[9; 100]);
        let moov = boxed(b"moov", &mvhd_v0(600, 1200));
        assert_eq!(inspect(file(&[ftyp(), moov, open_mdat])), Ok(2000));
    }

    #[test]
    fn a_fragmented_file_gives_its_duration_in_mehd() {
        let mut mehd = vec![0u8; 4];
        mehd.extend_from_slice(&2500u32.to_be_bytes());
        let mvex = boxed(b"mvex", &boxed(b"mehd", &mehd));
        let moov = boxed(b"moov", &[mvhd_v0(1000, 0), mvex].concat());
        assert_eq!(inspect(file(&[ftyp(), moov])), Ok(2500));
        let moov = boxed(b"moov", &mvhd_v0(1000, 0));
        assert!(inspect(file(&[ftyp(), moov]))
            .unwrap_err()
            .contains("no duration"));
    }

    #[test]
    fn what_is_not_a_whole_mp4() {
        let moov = boxed(b"moov", &mvhd_v0(1000, 4000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "ftyp"),
            (b"{\"error\":\"not found\"}".to_vec(), "cut short"),
            ([moov.clone(), ftyp()].concat(), "ftyp"),
            (ftyp(), "no moov"),
            (
                [ftyp(), boxed(b"moov", &boxed(b"trak", &[]))].concat(),
                "no mvhd",
            ),
            (
                [ftyp(), boxed(b"moov", &mvhd_v0(0, 4000))].concat(),
                "timescale",
            ),
            // The moov is cut short: the file ends before the box does.
            (
                [ftyp(), moov[..moov.len() - 10].to_vec()].concat(),
                "cut short",
            ),
            // A box smaller than its own header.
            (
                [ftyp(), vec![0, 0, 0, 4, b'f', b'r', b'e', b'e']].concat(),
                "bad size",
            ),
        ];
        for (bytes, needle) in cases {
            let e = inspect(Cursor::new(bytes.clone())).unwrap_err();
            assert!(e.contains(needle), "{e} for {bytes:?}");
        }
    }

    #[test]
    fn unknown_durations_are_none() {
        let moov = boxed(b"moov", &mvhd_v0(1000, u32::MAX));
        assert!(inspect(file(&[ftyp(), moov])).is_err());
    }

    #[test]
    fn errors_are_classified() {
        assert!(ExportError::from_call(ProtectError::Timeout).is_transient());
        assert!(ExportError::from_call(ProtectError::Unreachable("x".into())).is_transient());
        assert!(!ExportError::from_call(ProtectError::BadCredentials).is_transient());
        assert!(!ExportError::from_call(ProtectError::InvalidInput("x".into())).is_transient());
    }

    fn body(
        chunks: Vec<&'static [u8]>,
    ) -> impl hyper::body::Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames = chunks.into_iter().map(|c| {
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from_static(c)))
        });
        http_body_util::StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn saving_checks_the_start_the_size_and_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.mp4");
        let mp4: &'static [u8] = Box::leak(
            [
                ftyp(),
                boxed(b"moov", &mvhd_v0(1000, 3000)),
                boxed(b"mdat", &[7; 50]),
            ]
            .concat()
            .into_boxed_slice(),
        );
        let (a, b) = mp4.split_at(5);
        let got = save(body(vec![a, b]), &dest, 1 << 20, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(
            got,
            ExportedVideo {
                bytes: mp4.len() as u64,
                duration_ms: 3000
            }
        );
        assert_eq!(std::fs::read(&dest).unwrap(), mp4);

        let e = save(
            body(vec![b"<html>", b"busy</html>"]),
            &dest,
            1 << 20,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            e.is_transient() && e.to_string().contains("not an MP4"),
            "{e}"
        );
        let e = save(body(vec![mp4]), &dest, 64, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(!e.is_transient() && e.to_string().contains("larger"), "{e}");
        let e = save(
            body(vec![&mp4[..mp4.len() - 1]]),
            &dest,
            1 << 20,
            Duration::from_secs(5),
        )
        .await
        .unwrap_err();
        assert!(
            e.is_transient() && e.to_string().contains("cut short"),
            "{e}"
        );
        let e = save(body(vec![]), &dest, 1 << 20, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
    }
}
