//! Memory bombs: small files that stand for huge amounts of data, built
//! without ever holding that data (compressed streams made of one deflate
//! block repeated).

use std::path::Path;

use flate2::{Compress, Compression, FlushCompress};

/// A raw deflate stream inflating to `chunk` repeated `times` times: one
/// block, compressed after a full flush (no reference to earlier data), so
/// that the same bytes stand for every repetition.
fn repeated_deflate(chunk: &[u8], times: usize) -> Vec<u8> {
    let mut compress = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(chunk.len() / 100 + 1024);
    compress.compress_vec(chunk, &mut block, FlushCompress::Full).expect("deflate");
    assert_eq!(compress.total_in(), chunk.len() as u64, "block buffer too small");
    let mut stream = Vec::with_capacity(block.len() * times + 2);
    for _ in 0..times {
        stream.extend_from_slice(&block);
    }
    // An empty final block (fixed Huffman codes): the end of the stream.
    stream.extend_from_slice(&[0x03, 0x00]);
    stream
}

/// A zlib stream of `size` zero bytes (`size` a multiple of 64 MiB).
pub fn zlib_zeros(size: u64) -> Vec<u8> {
    const CHUNK: usize = 64 << 20;
    assert_eq!(size % CHUNK as u64, 0);
    let mut stream = vec![0x78, 0xda];
    stream.extend(repeated_deflate(&vec![0; CHUNK], (size / CHUNK as u64) as usize));
    // Adler-32 of zeros: a stays 1, b adds 1 a byte.
    let adler = (((size % 65521) as u32) << 16) | 1;
    stream.extend_from_slice(&adler.to_be_bytes());
    stream
}

/// A gzipped pprof `Profile` of about `count` empty `Location` messages
/// (field 4, two bytes each on the wire), rounded up to 32 Mi of them.
pub fn pprof_of_empty_locations(path: &Path, count: u64) -> u64 {
    const CHUNK: usize = 64 << 20;
    let chunk: Vec<u8> = [0x22, 0x00].repeat(CHUNK / 2);
    let times = count.div_ceil((CHUNK / 2) as u64) as usize;
    let mut crc = flate2::Crc::new();
    for _ in 0..times {
        crc.update(&chunk);
    }
    let mut file = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    file.extend(repeated_deflate(&chunk, times));
    file.extend_from_slice(&crc.sum().to_le_bytes());
    file.extend_from_slice(&((CHUNK * times) as u32).to_le_bytes());
    std::fs::write(path, file).expect("write the pprof bomb");
    (times * CHUNK / 2) as u64
}

/// A folded file of one line of `size` bytes: `main;a;a;...;a 1`.
pub fn folded_line(path: &Path, size: usize) {
    let mut line = b"main".to_vec();
    line.extend(b";a".repeat((size - 7) / 2));
    line.extend_from_slice(b" 1\n");
    std::fs::write(path, line).expect("write the folded bomb");
}

/// A copy of the ELF file `original` whose sections `names` all claim to
/// inflate (zlib, SHF_COMPRESSED) to 4 GiB, and do: their header points at
/// one stream appended to the file. The program still runs: the kernel
/// loads segments, not sections.
pub fn elf_with_4_gib_sections(original: &Path, copy: &Path, names: &[&str]) {
    const SIZE: u64 = 4 << 30;
    let mut bytes = std::fs::read(original).expect("read the ELF file");
    let word = |bytes: &[u8], at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let half = |bytes: &[u8], at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum, shstrndx) =
        (word(&bytes, 0x28) as usize, half(&bytes, 0x3a), half(&bytes, 0x3c), half(&bytes, 0x3e));
    let header = |index: usize| shoff + index * shentsize;
    let strings = word(&bytes, header(shstrndx) + 24) as usize;
    let name_of = |bytes: &[u8], index: usize| {
        let at = strings + u32::from_le_bytes(bytes[header(index)..header(index) + 4].try_into().unwrap()) as usize;
        let end = bytes[at..].iter().position(|&b| b == 0).unwrap();
        String::from_utf8_lossy(&bytes[at..at + end]).into_owned()
    };
    // The compression header (ch_type 1: zlib, ch_size, ch_addralign), then the stream.
    let offset = bytes.len() as u64;
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&SIZE.to_le_bytes());
    bytes.extend_from_slice(&8u64.to_le_bytes());
    bytes.extend(zlib_zeros(SIZE));
    let size = bytes.len() as u64 - offset;
    for name in names {
        let index = (0..shnum).find(|&i| name_of(&bytes, i) == *name).unwrap_or_else(|| panic!("no section {name}"));
        let at = header(index);
        let flags = word(&bytes, at + 8) | 0x800;
        bytes[at + 8..at + 16].copy_from_slice(&flags.to_le_bytes());
        bytes[at + 24..at + 32].copy_from_slice(&offset.to_le_bytes());
        bytes[at + 32..at + 40].copy_from_slice(&size.to_le_bytes());
    }
    std::fs::write(copy, bytes).expect("write the ELF copy");
    std::fs::set_permissions(copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
}
