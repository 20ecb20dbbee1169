//! Embeds the web app (`web/`) in the binary: every file is gzip-compressed here, at build
//! time, with a strong ETag from its content, and the whole app gets a version (a hash of every
//! file) that names its URL prefix `/app/<version>/`, so browsers may cache those files for good.
//! Nothing but cargo is needed: no node, npm or bundler. The generated table is
//! `$OUT_DIR/web_assets.rs`, included by `src/http/web.rs`.

#[path = "src/http/mime.rs"]
mod mime;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=src/http/mime.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    let mut version = Fnv::new();
    let mut sources = Vec::new();
    for rel in &files {
        let bytes = std::fs::read(root.join(rel)).expect("read a web file");
        println!("cargo:rerun-if-changed=web/{rel}");
        version.write(rel.as_bytes());
        version.write(&bytes);
        sources.push(bytes);
    }
    let version = format!("{:012x}", version.finish() & 0xffff_ffff_ffff);
    let mut table = String::new();
    writeln!(
        table,
        "/// A hash of every file of the app: its URL prefix is `/app/<VERSION>/`."
    )
    .unwrap();
    writeln!(table, "pub const VERSION: &str = {version:?};").unwrap();
    writeln!(table, "pub static ASSETS: &[Asset] = &[").unwrap();
    for (rel, mut bytes) in files.iter().zip(sources) {
        if rel == "index.html" {
            let text = String::from_utf8(bytes).expect("index.html is UTF-8");
            bytes = text
                .replace("{{APP}}", &format!("/app/{version}"))
                .into_bytes();
        }
        let mut h = Fnv::new();
        h.write(&bytes);
        let etag = format!("\"{:016x}\"", h.finish());
        let gz = gzip(&bytes);
        let name = format!("web-{}.gz", rel.replace('/', "__"));
        std::fs::write(out.join(&name), &gz).expect("write a compressed web file");
        writeln!(
            table,
            "    Asset {{ path: {rel:?}, content_type: {ct:?}, etag: {etag:?}, len: {len}, gzip: include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{name}\")) }},",
            ct = content_type(rel),
            len = bytes.len(),
        )
        .unwrap();
    }
    writeln!(table, "];").unwrap();
    std::fs::write(out.join("web_assets.rs"), table).expect("write web_assets.rs");
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read web/") {
        let path = entry.expect("a web/ entry").path();
        if path.is_dir() {
            walk(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under web/");
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    mime::content_type(path).unwrap_or_else(|| {
        panic!("web/{path}: no content type for it; add one in src/http/mime.rs")
    })
}

/// FNV-1a, 64 bits: ETags and the version only need to change when the bytes do.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A gzip member (RFC 1952): header, raw deflate at the best level, CRC-32 and length.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 10));
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in data {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
